// Package loopfs mounts small real filesystems for integration tests that
// run as root: ext4 and xfs on loop devices, FAT through fusefat, tmpfs and
// bind mounts. Each helper skips the test when not root, fails it with the
// Debian package to install when a tool is missing (scripts/test-setup.sh
// installs them), and registers a t.Cleanup that unmounts, detaches any loop
// device left behind and removes the image, also when the test fails.
// Cleanups run last-in first-out, so a filesystem whose image lies on
// another test filesystem (ImageIn) is unmounted before it.
//
// Mount points live in t.TempDir(). Images live there too, unless ImageIn
// says otherwise or the environment variable WHARF_LOOPFS_DIR names a
// folder to put them in. A loop-mounted volume counts as fixed media only
// when its image lies on fixed media, so on a host whose temp folder is not
// (a container's overlay root, a tmpfs /tmp) point WHARF_LOOPFS_DIR at a
// folder on a disk.
package loopfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts loop devices, tmpfs and FUSE filesystems (run the tests as root, as CI does)")
	}
}

// Option changes how a filesystem is made.
type Option func(*config)

type config struct {
	imageDir string
}

// ImageIn puts the image file in dir instead of a fresh t.TempDir(), e.g.
// on a tmpfs to get a loop device that is not fixed media.
func ImageIn(dir string) Option { return func(c *config) { c.imageDir = dir } }

// Ext4 makes an ext4 filesystem of sizeMiB MiB in a sparse image file,
// loop-mounts it read-write and returns the mount point.
func Ext4(t testing.TB, sizeMiB int, opts ...Option) string {
	t.Helper()
	return loopMount(t, "ext4", sizeMiB, opts, "mkfs.ext4", "e2fsprogs", "-q", "-F")
}

// MinXFSMiB is the smallest filesystem mkfs.xfs (xfsprogs 5.19 and later)
// agrees to make. The image is sparse, so it costs little disk.
const MinXFSMiB = 300

// XFS makes an xfs filesystem of sizeMiB MiB (at least MinXFSMiB) in a
// sparse image file, loop-mounts it read-write and returns the mount point.
func XFS(t testing.TB, sizeMiB int, opts ...Option) string {
	t.Helper()
	if sizeMiB < MinXFSMiB {
		t.Fatalf("loopfs.XFS: %d MiB is below the %d MiB mkfs.xfs accepts", sizeMiB, MinXFSMiB)
	}
	return loopMount(t, "xfs", sizeMiB, opts, "mkfs.xfs", "xfsprogs", "-q", "-f")
}

// FAT makes a FAT filesystem of sizeMiB MiB in an image file with
// mkfs.vfat, mounts it read-write through FUSE (fusefat -o rw+, mount type
// fuse.fusefat) and returns the mount point.
func FAT(t testing.TB, sizeMiB int, opts ...Option) string {
	t.Helper()
	RequireRoot(t)
	mkfs := tool(t, "mkfs.vfat", "dosfstools")
	fusefat := tool(t, "fusefat", "fusefat")
	fusermount := tool(t, "fusermount", "fuse")
	img, dir := paths(t, "fat", opts)
	makeImage(t, img, sizeMiB)
	run(t, mkfs, img)
	// fusefat forks a daemon that may keep its stdout: write the output
	// to a file, not a pipe the test would wait on.
	out, err := os.CreateTemp(t.TempDir(), "fusefat-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(fusefat, "-o", "rw+", img, dir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(out.Name())
		t.Fatalf("fusefat %s %s: %v\n%s", img, dir, err, log)
	}
	t.Cleanup(func() {
		unmount(t, dir, fusermount, "-u")
		_ = os.Remove(img)
	})
	waitMounted(t, dir)
	return dir
}

// Tmpfs mounts a tmpfs of sizeMiB MiB and returns the mount point.
func Tmpfs(t testing.TB, sizeMiB int) string {
	t.Helper()
	RequireRoot(t)
	mount := tool(t, "mount", "mount")
	umount := tool(t, "umount", "mount")
	dir := mkdir(t, filepath.Join(t.TempDir(), "tmpfs"))
	run(t, mount, "-t", "tmpfs", "-o", "size="+strconv.Itoa(sizeMiB)+"m", "tmpfs", dir)
	t.Cleanup(func() { unmount(t, dir, umount) })
	return dir
}

// Bind bind-mounts the existing folder src on a new folder and returns it:
// a second mount of the same filesystem.
func Bind(t testing.TB, src string) string {
	t.Helper()
	RequireRoot(t)
	mount := tool(t, "mount", "mount")
	umount := tool(t, "umount", "mount")
	dir := mkdir(t, filepath.Join(t.TempDir(), "bind"))
	run(t, mount, "--bind", src, dir)
	t.Cleanup(func() { unmount(t, dir, umount) })
	return dir
}

// Remount changes the options of the mount at dir, e.g. "ro" or "rw"
// (mount -o remount,OPTS). The mount's own cleanup still unmounts it.
func Remount(t testing.TB, dir, opts string) {
	t.Helper()
	RequireRoot(t)
	run(t, tool(t, "mount", "mount"), "-o", "remount,"+opts, dir)
}

// loopMount makes a filesystem with mkfs (from Debian package pkg, run with
// args and the image) and mounts it with mount -o loop.
func loopMount(t testing.TB, name string, sizeMiB int, opts []Option, mkfs, pkg string, args ...string) string {
	t.Helper()
	RequireRoot(t)
	mkfsPath := tool(t, mkfs, pkg)
	mount := tool(t, "mount", "mount")
	umount := tool(t, "umount", "mount")
	losetup := tool(t, "losetup", "mount")
	img, dir := paths(t, name, opts)
	makeImage(t, img, sizeMiB)
	run(t, mkfsPath, append(args, img)...)
	run(t, mount, "-o", "loop", img, dir)
	t.Cleanup(func() {
		unmount(t, dir, umount)
		detach(t, losetup, img)
		_ = os.Remove(img)
	})
	return dir
}

// ImageDir returns the folder the helpers put images in when ImageIn is not
// given: a fresh folder in $WHARF_LOOPFS_DIR if set, else t.TempDir().
func ImageDir(t testing.TB) string {
	t.Helper()
	env := os.Getenv("WHARF_LOOPFS_DIR")
	if env == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(env, "loopfs-*")
	if err != nil {
		t.Fatalf("loopfs: WHARF_LOOPFS_DIR: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// paths returns a fresh image path and mount point for a filesystem.
func paths(t testing.TB, name string, opts []Option) (img, dir string) {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	base := t.TempDir()
	if c.imageDir == "" {
		c.imageDir = ImageDir(t)
	}
	f, err := os.CreateTemp(c.imageDir, name+"-*.img")
	if err != nil {
		t.Fatalf("loopfs: create image: %v", err)
	}
	f.Close()
	return f.Name(), mkdir(t, filepath.Join(base, name))
}

func makeImage(t testing.TB, img string, sizeMiB int) {
	t.Helper()
	if err := os.Truncate(img, int64(sizeMiB)<<20); err != nil {
		t.Fatalf("loopfs: size image: %v", err)
	}
}

func mkdir(t testing.TB, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("loopfs: %v", err)
	}
	return dir
}

// tool finds a command, also in the sbin folders a non-login PATH may lack,
// or fails the test naming the Debian package that provides it.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("loopfs: %s not found: install the Debian package %s (apt-get install -y %s, or run scripts/test-setup.sh)", name, pkg, pkg)
	return ""
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("loopfs: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// waitMounted waits until dir is a mount point: a FUSE daemon may finish
// mounting after its launcher returns.
func waitMounted(t testing.TB, dir string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ok, err := mountinfo.Mounted(dir); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("loopfs: %s not mounted after 10s", dir)
		}
	}
}

// unmount runs the unmount command (with args, then dir) until it works,
// retrying while the mount is busy; as a last resort it detaches the mount
// lazily (umount -l) and fails the test.
func unmount(t testing.TB, dir, cmd string, args ...string) {
	t.Helper()
	var out []byte
	var err error
	for range 50 {
		if ok, merr := mountinfo.Mounted(dir); merr == nil && !ok {
			return
		}
		out, err = exec.Command(cmd, append(args, dir)...).CombinedOutput()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lazy, lerr := exec.Command("umount", "-l", dir).CombinedOutput(); lerr != nil {
		t.Errorf("loopfs: umount -l %s: %v\n%s", dir, lerr, lazy)
	}
	t.Errorf("loopfs: unmount %s: %v\n%s", dir, err, out)
}

// detach detaches every loop device still backed by img (mount -o loop
// sets autoclear, so normally there is none).
func detach(t testing.TB, losetup, img string) {
	t.Helper()
	out, err := exec.Command(losetup, "-j", img).Output()
	if err != nil {
		t.Errorf("loopfs: losetup -j %s: %v", img, err)
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dev, _, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(dev, "/dev/loop") {
			continue
		}
		if out, err := exec.Command(losetup, "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("loopfs: losetup -d %s: %v\n%s", dev, err, out)
		}
	}
}

// Unmount unmounts the loop-mounted volume at dir while the test goes on
// (as an administrator pulling a disk would), retrying while it is busy,
// and returns a function that mounts the same image there again. The
// mount's own cleanup still unmounts it at the end of the test.
func Unmount(t testing.TB, dir string) (remount func()) {
	t.Helper()
	RequireRoot(t)
	out, err := exec.Command(tool(t, "findmnt", "util-linux"), "-n", "-o", "SOURCE", "--mountpoint", dir).Output()
	if err != nil {
		t.Fatalf("loopfs: findmnt %s: %v", dir, err)
	}
	dev := strings.TrimSpace(string(out))
	backing, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file"))
	if err != nil || !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("loopfs: %s is not a loop mount (source %q): %v", dir, dev, err)
	}
	img := strings.TrimSpace(string(backing))
	var msg []byte
	for range 100 {
		if msg, err = exec.Command(tool(t, "umount", "mount"), dir).CombinedOutput(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // busy: a handle closes soon
	}
	if err != nil {
		t.Fatalf("loopfs: unmount %s: %v\n%s", dir, err, msg)
	}
	return func() {
		t.Helper()
		run(t, tool(t, "mount", "mount"), "-o", "loop", img, dir)
		waitMounted(t, dir)
	}
}
