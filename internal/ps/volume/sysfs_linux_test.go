package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// fakeSys builds a fake /sys and /proc under a temp folder. Real files the
// checks stat (loop backing files, FUSE images) live under data, which the
// fake mount table declares as mounts of its own.
type fakeSys struct {
	t               *testing.T
	sys, proc, data string
	mounts          []string
}

func newFakeSys(t *testing.T) *fakeSys {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSys{t: t, sys: filepath.Join(root, "sys"), proc: filepath.Join(root, "proc"), data: filepath.Join(root, "data")}
	for _, d := range []string{f.sys, f.proc, f.data} {
		f.mkdir(d)
	}
	// The whole host is on sda1, a fixed disk.
	f.mount("/", "8:1", "ext4", "/dev/sda1")
	return f
}

func (f *fakeSys) os() *OS { return &OS{proc: f.proc, sys: f.sys} }

func (f *fakeSys) mkdir(d string) {
	if err := os.MkdirAll(d, 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSys) write(p, content string) {
	f.mkdir(filepath.Dir(p))
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSys) symlink(target, p string) {
	f.mkdir(filepath.Dir(p))
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

// disk adds a whole disk with a removable flag, reachable as major:minor.
func (f *fakeSys) disk(name, devnum, removable string) string {
	dir := filepath.Join(f.sys, "devices", "pci0000:00", "block", name)
	if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "dm-") || strings.HasPrefix(name, "md") ||
		strings.HasPrefix(name, "zram") || strings.HasPrefix(name, "nbd") {
		dir = filepath.Join(f.sys, "devices", "virtual", "block", name)
	}
	f.write(filepath.Join(dir, "removable"), removable+"\n")
	f.link(name, devnum, dir)
	return dir
}

// partition adds partition name of the disk in diskDir.
func (f *fakeSys) partition(diskDir, name, devnum string) {
	dir := filepath.Join(diskDir, name)
	f.write(filepath.Join(dir, "partition"), "1\n")
	f.link(name, devnum, dir)
}

func (f *fakeSys) link(name, devnum, dir string) {
	rel := func(from string) string {
		r, err := filepath.Rel(filepath.Dir(from), dir)
		if err != nil {
			f.t.Fatal(err)
		}
		return r
	}
	p := filepath.Join(f.sys, "class", "block", name)
	f.symlink(rel(p), p)
	p = filepath.Join(f.sys, "dev", "block", devnum)
	f.symlink(rel(p), p)
}

// slaves makes the devices in slaves the slaves of the device in dir.
func (f *fakeSys) slaves(dir string, slaves ...string) {
	for _, s := range slaves {
		f.symlink(filepath.Join(f.sys, "class", "block", s), filepath.Join(dir, "slaves", s))
	}
}

// backing makes the loop device in dir backed by file.
func (f *fakeSys) backing(dir, file string) {
	f.write(filepath.Join(dir, "loop", "backing_file"), file+"\n")
}

// mount adds a line to the fake mount table.
func (f *fakeSys) mount(mountpoint, devnum, fstype, source string) *mountinfo.Info {
	f.mounts = append(f.mounts, fmt.Sprintf("%d 1 %s / %s rw,relatime - %s %s rw",
		len(f.mounts)+20, devnum, mountpoint, fstype, source))
	f.write(filepath.Join(f.proc, "self", "mountinfo"), strings.Join(f.mounts, "\n")+"\n")
	ms, err := f.os().mounts()
	if err != nil {
		f.t.Fatal(err)
	}
	return ms[len(ms)-1]
}

// file creates a real file under data and returns its path.
func (f *fakeSys) file(rel string) string {
	p := filepath.Join(f.data, rel)
	f.write(p, "image")
	return p
}

func TestDeviceFixed(t *testing.T) {
	f := newFakeSys(t)
	sda := f.disk("sda", "8:0", "0")
	f.partition(sda, "sda1", "8:1")
	sdb := f.disk("sdb", "8:16", "1")
	f.partition(sdb, "sdb1", "8:17")
	f.disk("nvme0n1", "259:0", "0")
	dm0 := f.disk("dm-0", "253:0", "0")
	f.slaves(dm0, "sda1")
	dm1 := f.disk("dm-1", "253:1", "0")
	f.slaves(dm1, "sda1", "sdb1")
	md0 := f.disk("md0", "9:0", "0")
	f.slaves(md0, "dm-0", "nvme0n1")
	f.disk("zram0", "252:0", "0")
	f.disk("nbd0", "43:0", "0")

	// Loop devices: backed by a file on the fixed host, by a file on a
	// tmpfs, by nothing, by a deleted file, by a file on another loop
	// device, and by a file on themselves (a cycle).
	f.mount(filepath.Join(f.data, "ram"), "0:50", "tmpfs", "tmpfs")
	f.mount(filepath.Join(f.data, "usb"), "8:17", "ext4", "/dev/sdb1")
	f.mount(filepath.Join(f.data, "onloop0"), "7:0", "ext4", "/dev/loop0")
	f.mount(filepath.Join(f.data, "onloop5"), "7:5", "ext4", "/dev/loop5")
	loop0 := f.disk("loop0", "7:0", "0")
	f.backing(loop0, f.file("disk.img"))
	loop1 := f.disk("loop1", "7:1", "0")
	f.backing(loop1, f.file("ram/disk.img"))
	f.disk("loop2", "7:2", "0")
	loop3 := f.disk("loop3", "7:3", "0")
	f.backing(loop3, "/var/tmp/gone.img (deleted)")
	loop4 := f.disk("loop4", "7:4", "0")
	f.backing(loop4, f.file("onloop0/inner.img"))
	f.partition(loop4, "loop4p1", "259:8")
	loop5 := f.disk("loop5", "7:5", "0")
	f.backing(loop5, f.file("onloop5/self.img"))
	loop6 := f.disk("loop6", "7:6", "0")
	f.backing(loop6, f.file("usb/disk.img"))

	tests := []struct {
		dev    string
		want   bool
		reason string // a substring of the reason
	}{
		{"sda", true, ""},
		{"sda1", true, ""},
		{"sdb", false, "removable device sdb"},
		{"sdb1", false, "removable device sdb"},
		{"nvme0n1", true, ""},
		{"dm-0", true, ""},
		{"dm-1", false, "removable device sdb on dm-1"},
		{"md0", true, ""},
		{"zram0", false, "memory block device zram0"},
		{"nbd0", false, "network block device nbd0"},
		{"loop0", true, ""},
		{"loop1", false, "memory filesystem tmpfs"},
		{"loop2", false, "loop device loop2 has no backing file"},
		{"loop3", false, "(deleted)"},
		{"loop4", true, ""},
		{"loop4p1", true, ""},
		{"loop5", false, tooDeep},
		{"loop6", false, "removable device sdb"},
		{"sdz", false, "block device sdz not found in sysfs"},
	}
	o := f.os()
	for _, tt := range tests {
		got, reason := o.deviceFixed(tt.dev, 0)
		if got != tt.want || !strings.Contains(reason, tt.reason) || (got && reason != "") {
			t.Errorf("deviceFixed(%s) = %v, %q; want %v, reason containing %q", tt.dev, got, reason, tt.want, tt.reason)
		}
	}
	if got, reason := o.devnumFixed(8, 1, 0); !got {
		t.Errorf("devnumFixed(8:1) = false, %q", reason)
	}
	if got, reason := o.devnumFixed(8, 17, 0); got || reason != "removable device sdb" {
		t.Errorf("devnumFixed(8:17) = %v, %q; want false, removable device sdb", got, reason)
	}
	if got, reason := o.devnumFixed(99, 9, 0); got || reason != "block device 99:9 not found in sysfs" {
		t.Errorf("devnumFixed(99:9) = %v, %q", got, reason)
	}
}

func TestMountFixed(t *testing.T) {
	f := newFakeSys(t)
	sda := f.disk("sda", "8:0", "0")
	f.partition(sda, "sda1", "8:1")
	f.mount(filepath.Join(f.data, "ram"), "0:50", "tmpfs", "tmpfs")
	img := f.file("fat.img")
	ramImg := f.file("ram/fat.img")

	// FUSE servers: pid 100 serves connection 77 from an image on the
	// fixed host, pid 200 serves connection 78 from an image on a tmpfs;
	// pid 300 has /dev/fuse open for another connection.
	server := func(pid int, conn string, image string) {
		dir := filepath.Join(f.proc, fmt.Sprint(pid))
		f.symlink("/dev/null", filepath.Join(dir, "fd", "0"))
		f.symlink(image, filepath.Join(dir, "fd", "3"))
		f.symlink("/dev/fuse", filepath.Join(dir, "fd", "4"))
		f.symlink("pipe:[1234]", filepath.Join(dir, "fd", "5"))
		f.write(filepath.Join(dir, "fdinfo", "4"), "pos:\t0\nflags:\t0100002\nmnt_id:\t24\nino:\t90\nfuse_connection:\t"+conn+"\n")
	}
	server(100, "77", img)
	server(200, "78", ramImg)
	server(300, "99", img)
	f.write(filepath.Join(f.proc, "self", "status"), "not a pid")

	tests := []struct {
		name   string
		m      *mountinfo.Info
		want   bool
		reason string
	}{
		{"ext4 on a fixed partition", f.mount("/mnt/a", "8:1", "ext4", "/dev/sda1"), true, ""},
		{"tmpfs", f.mount("/mnt/b", "0:51", "tmpfs", "tmpfs"), false, "memory filesystem tmpfs"},
		{"nfs", f.mount("/mnt/c", "0:52", "nfs4", "srv:/export"), false, "network filesystem nfs4"},
		{"overlay", f.mount("/mnt/d", "0:53", "overlay", "overlay"), false, "union filesystem overlay"},
		{"sshfs", f.mount("/mnt/e", "0:54", "fuse.sshfs", "me@host:"), false, "network filesystem fuse.sshfs"},
		{"other FUSE", f.mount("/mnt/f", "0:55", "fuse.mystery", "mystery"), false, "FUSE filesystem fuse.mystery"},
		{"zfs", f.mount("/mnt/g", "0:56", "zfs", "tank/data"), true, ""},
		{"anonymous device, no source", f.mount("/mnt/h", "0:57", "btrfs", "none"), false, "filesystem btrfs is not backed by a block device"},
		{"fusefat found through its server", f.mount("/mnt/i", "0:77", "fuse.fusefat", "fusefat"), true, ""},
		{"fusefat image on tmpfs", f.mount("/mnt/j", "0:78", "fuse.fusefat", "fusefat"), false, "fuse.fusefat filesystem backed by " + ramImg + ": memory filesystem tmpfs"},
		{"fusefat without a server", f.mount("/mnt/k", "0:79", "fuse.fusefat", "fusefat"), false, "its image file cannot be found"},
		{"fusefat source names the image", f.mount("/mnt/l", "0:80", "fuse.fusefat", ramImg), false, "memory filesystem tmpfs"},
		{"fuseblk on no device", f.mount("/mnt/m", "0:81", "fuseblk", "nodev"), false, "source nodev is not a block device"},
	}
	o := f.os()
	for _, tt := range tests {
		got, reason := o.mountFixed(tt.m, 0)
		if got != tt.want || !strings.Contains(reason, tt.reason) || (got && reason != "") {
			t.Errorf("%s: mountFixed = %v, %q; want %v, reason containing %q", tt.name, got, reason, tt.want, tt.reason)
		}
	}
}

func TestMountOf(t *testing.T) {
	f := newFakeSys(t)
	f.mount("/data", "8:2", "ext4", "/dev/sda2")
	f.mount("/data/sub", "8:3", "xfs", "/dev/sda3")
	f.mount("/data", "8:4", "ext4", "/dev/sda4") // on top of the first /data
	ms, err := f.os().mounts()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, source string }{
		{"/", "/dev/sda1"},
		{"/etc", "/dev/sda1"},
		{"/database", "/dev/sda1"},
		{"/data", "/dev/sda4"},
		{"/data/x", "/dev/sda4"},
		{"/data/sub", "/dev/sda3"},
		{"/data/sub/x/y", "/dev/sda3"},
		{"/data/subx", "/dev/sda4"},
	}
	for _, tt := range tests {
		if m := mountOf(ms, tt.path); m == nil || m.Source != tt.source {
			t.Errorf("mountOf(%s) = %+v, want source %s", tt.path, m, tt.source)
		}
	}
	var got []string
	for _, m := range visible(ms) {
		got = append(got, m.Mountpoint+"="+m.Source)
	}
	if want := "/=/dev/sda1 /data/sub=/dev/sda3 /data=/dev/sda4"; strings.Join(got, " ") != want {
		t.Errorf("visible = %q, want %q", got, want)
	}
}
