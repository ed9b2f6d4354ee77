package volume_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"golang.org/x/sys/unix"
)

// Integration tests on real filesystems, as root (loopfs skips them
// otherwise). Every volume checked is one the test mounted.

// hostFixed reports whether images made by loopfs land on fixed media, which
// decides whether a loop-mounted volume is fixed.
func hostFixed(t *testing.T) bool {
	t.Helper()
	info, err := volume.New().Stat(loopfs.ImageDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Fixed {
		t.Logf("images land on %s (%s), not fixed media: loop volumes will not be fixed either; set WHARF_LOOPFS_DIR to a folder on a disk to test more",
			info.Root, info.FixedReason)
	}
	return info.Fixed
}

// want is what a test expects of a volume.
type want struct {
	fstype             string
	fixed, supported   bool
	fixedReason        string // a substring, when not fixed
	eligible           bool
	devicePrefix       string
	minTotal, maxTotal uint64
}

// checkVolume checks the facts of the volume mounted at dir, through a path
// below it that does not exist, through Volumes and through Eligible.
func checkVolume(t *testing.T, dir string, w want) volume.Info {
	t.Helper()
	facts := volume.New()
	path := filepath.Join(dir, "not", "yet", "there")
	info, err := facts.Stat(path)
	if err != nil {
		t.Fatalf("Stat(%s): %v", path, err)
	}
	if info.Path != path || info.Root != dir || info.FSRoot != "/" {
		t.Errorf("Path, Root, FSRoot = %s, %s, %s; want %s, %s, /", info.Path, info.Root, info.FSRoot, path, dir)
	}
	if info.FSType != w.fstype {
		t.Errorf("FSType = %q, want %q", info.FSType, w.fstype)
	}
	if !strings.HasPrefix(info.Device, w.devicePrefix) {
		t.Errorf("Device = %q, want prefix %q", info.Device, w.devicePrefix)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if info.DevID != st.Dev {
		t.Errorf("DevID = %d, want st_dev %d", info.DevID, st.Dev)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	bs := uint64(sfs.Frsize)
	if bs == 0 {
		bs = uint64(sfs.Bsize)
	}
	near := func(name string, got, want uint64) {
		if diff := max(got, want) - min(got, want); diff > want/50 {
			t.Errorf("%s = %d, want %d ±2%% (statfs)", name, got, want)
		}
	}
	near("TotalBytes", info.TotalBytes, sfs.Blocks*bs)
	near("AvailBytes", info.AvailBytes, sfs.Bavail*bs)
	if info.TotalBytes < w.minTotal || info.TotalBytes > w.maxTotal {
		t.Errorf("TotalBytes = %d, want within [%d, %d]", info.TotalBytes, w.minTotal, w.maxTotal)
	}
	if info.AvailBytes == 0 || info.AvailBytes > info.TotalBytes {
		t.Errorf("AvailBytes = %d of %d", info.AvailBytes, info.TotalBytes)
	}
	if info.ReadOnly || info.Excluded {
		t.Errorf("ReadOnly, Excluded = %v, %v; want false, false", info.ReadOnly, info.Excluded)
	}
	if info.Fixed != w.fixed || (w.fixed && info.FixedReason != "") || (!w.fixed && !strings.Contains(info.FixedReason, w.fixedReason)) {
		t.Errorf("Fixed = %v, %q; want %v, reason containing %q", info.Fixed, info.FixedReason, w.fixed, w.fixedReason)
	}
	if info.Supported != w.supported || (w.supported != (info.SupportedReason == "")) {
		t.Errorf("Supported = %v, %q; want %v", info.Supported, info.SupportedReason, w.supported)
	}

	vols, err := facts.Volumes()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(vols, func(v volume.Info) bool { return v.Root == dir })
	if i < 0 {
		t.Fatalf("Volumes does not list %s", dir)
	}
	listed, stat := vols[i], info
	listed.Path, stat.Path = "", ""
	listed.AvailBytes, stat.AvailBytes = 0, 0
	if listed != stat {
		t.Errorf("Volumes entry differs from Stat:\n got %+v\nwant %+v", listed, stat)
	}
	if got := eligibleRoots(t, dir); got != w.eligible {
		t.Errorf("eligible = %v, want %v (%s)", got, w.eligible, volume.Ineligible(info, volume.EligibleOptions{Only: []string{dir}}))
	}
	return info
}

// eligibleRoots reports whether Eligible, restricted to dir, picks dir.
func eligibleRoots(t *testing.T, dir string) bool {
	t.Helper()
	got, err := volume.Eligible(volume.New(), volume.EligibleOptions{Only: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	return len(got) == 1 && got[0].Root == dir
}

func TestExt4(t *testing.T) {
	fixed := hostFixed(t)
	dir := loopfs.Ext4(t, 64)
	info := checkVolume(t, dir, want{
		fstype: "ext4", fixed: fixed, fixedReason: "loop device", supported: true, eligible: fixed,
		devicePrefix: "/dev/loop", minTotal: 40 << 20, maxTotal: 64 << 20,
	})

	t.Run("NO_WHARF_ON_DRIVE", func(t *testing.T) {
		marker := filepath.Join(dir, volume.NoWharfMarker)
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := volume.New().Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Excluded {
			t.Error("Excluded = false with the marker at the root")
		}
		if eligibleRoots(t, dir) {
			t.Error("eligible with the marker at the root")
		}
		if err := os.Remove(marker); err != nil {
			t.Fatal(err)
		}
		if eligibleRoots(t, dir) != fixed {
			t.Errorf("eligible = %v after removing the marker, want %v", !fixed, fixed)
		}
	})

	t.Run("marker below the root does not count", func(t *testing.T) {
		sub := filepath.Join(dir, "sub")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, volume.NoWharfMarker), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := volume.New().Stat(sub); err != nil || got.Excluded {
			t.Errorf("Stat(%s) = Excluded %v, %v; want false", sub, got.Excluded, err)
		}
	})

	t.Run("read-only remount", func(t *testing.T) {
		loopfs.Remount(t, dir, "ro")
		got, err := volume.New().Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !got.ReadOnly {
			t.Error("ReadOnly = false after remount,ro")
		}
		if eligibleRoots(t, dir) {
			t.Error("eligible while read-only")
		}
		if r := volume.Ineligible(got, volume.EligibleOptions{}); fixed && r != "read-only" {
			t.Errorf("Ineligible = %q, want read-only", r)
		}
		loopfs.Remount(t, dir, "rw")
		if eligibleRoots(t, dir) != fixed {
			t.Errorf("eligible = %v after remount,rw, want %v", !fixed, fixed)
		}
	})

	t.Run("paths through symlinks", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(dir, link); err != nil {
			t.Fatal(err)
		}
		got, err := volume.New().Stat(filepath.Join(link, "store", "new"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Root != dir || got.DevID != info.DevID {
			t.Errorf("Stat through a symlink: Root %s DevID %d, want %s %d", got.Root, got.DevID, dir, info.DevID)
		}
		out, err := volume.New().Stat(filepath.Join(dir, "..", "elsewhere"))
		if err != nil {
			t.Fatal(err)
		}
		if out.Root == dir {
			t.Errorf("Stat(%s/../elsewhere) is on the ext4 volume", dir)
		}
	})

	t.Run("bind mount", func(t *testing.T) {
		sub := filepath.Join(dir, "export")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		bind := loopfs.Bind(t, sub)
		got, err := volume.New().Stat(bind)
		if err != nil {
			t.Fatal(err)
		}
		if got.Root != bind || got.FSRoot != "/export" || got.DevID != info.DevID || got.Device != info.Device {
			t.Errorf("Stat(bind) = Root %s FSRoot %s DevID %d Device %s; want %s /export %d %s",
				got.Root, got.FSRoot, got.DevID, got.Device, bind, info.DevID, info.Device)
		}
		el, err := volume.Eligible(volume.New(), volume.EligibleOptions{Only: []string{bind, dir}})
		if err != nil {
			t.Fatal(err)
		}
		if fixed && (len(el) != 1 || el[0].Root != dir) {
			t.Errorf("Eligible over a mount and its bind mount = %q, want [%s]", roots(el), dir)
		}
	})
}

func TestXFS(t *testing.T) {
	fixed := hostFixed(t)
	dir := loopfs.XFS(t, loopfs.MinXFSMiB)
	checkVolume(t, dir, want{
		fstype: "xfs", fixed: fixed, fixedReason: "loop device", supported: true, eligible: fixed,
		devicePrefix: "/dev/loop", minTotal: 200 << 20, maxTotal: loopfs.MinXFSMiB << 20,
	})
}

func TestTmpfs(t *testing.T) {
	dir := loopfs.Tmpfs(t, 16)
	info := checkVolume(t, dir, want{
		fstype: "tmpfs", fixed: false, fixedReason: "memory filesystem tmpfs", supported: false, eligible: false,
		devicePrefix: "tmpfs", minTotal: 16 << 20, maxTotal: 16 << 20,
	})
	if info.SupportedReason != "unsupported filesystem tmpfs" {
		t.Errorf("SupportedReason = %q", info.SupportedReason)
	}
}

func TestFAT(t *testing.T) {
	fixed := hostFixed(t)
	dir := loopfs.FAT(t, 32)
	info := checkVolume(t, dir, want{
		fstype: "fuse.fusefat", fixed: fixed, fixedReason: "fuse.fusefat", supported: false, eligible: false,
		devicePrefix: "fusefat", minTotal: 24 << 20, maxTotal: 32 << 20,
	})
	if info.SupportedReason != "unsupported filesystem fuse.fusefat" {
		t.Errorf("SupportedReason = %q", info.SupportedReason)
	}
}

// Volumes whose images lie on a tmpfs are not fixed media, whatever their
// filesystem.
func TestImagesOnTmpfs(t *testing.T) {
	ram := loopfs.Tmpfs(t, 128)
	t.Run("ext4", func(t *testing.T) {
		dir := loopfs.Ext4(t, 16, loopfs.ImageIn(ram))
		checkVolume(t, dir, want{
			fstype: "ext4", fixed: false, fixedReason: "memory filesystem tmpfs", supported: true, eligible: false,
			devicePrefix: "/dev/loop", minTotal: 8 << 20, maxTotal: 16 << 20,
		})
	})
	t.Run("FAT", func(t *testing.T) {
		dir := loopfs.FAT(t, 16, loopfs.ImageIn(ram))
		checkVolume(t, dir, want{
			fstype: "fuse.fusefat", fixed: false, fixedReason: "memory filesystem tmpfs", supported: false, eligible: false,
			devicePrefix: "fusefat", minTotal: 8 << 20, maxTotal: 16 << 20,
		})
	})
	t.Run("ext4 on an ext4 on a tmpfs", func(t *testing.T) {
		outer := loopfs.Ext4(t, 64, loopfs.ImageIn(ram))
		dir := loopfs.Ext4(t, 16, loopfs.ImageIn(outer))
		checkVolume(t, dir, want{
			fstype: "ext4", fixed: false, fixedReason: "memory filesystem tmpfs", supported: true, eligible: false,
			devicePrefix: "/dev/loop", minTotal: 8 << 20, maxTotal: 16 << 20,
		})
	})
}

func TestVolumesSkipsPseudoFilesystems(t *testing.T) {
	loopfs.RequireRoot(t)
	vols, err := volume.New().Volumes()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range vols {
		switch v.FSType {
		case "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "securityfs":
			t.Errorf("Volumes lists %s at %s", v.FSType, v.Root)
		}
		if seen[v.Root] {
			t.Errorf("Volumes lists %s twice", v.Root)
		}
		seen[v.Root] = true
	}
	if !seen["/"] {
		t.Error("Volumes does not list /")
	}
}

// TestStatOfATooLongName: a path with a name longer than the file system
// takes is on the volume of what of it exists; its length is for the path
// check to refuse, not a reason to know nothing of its volume (issue 16: the
// plan then also reported fixed-media, file-system and space failures).
func TestStatOfATooLongName(t *testing.T) {
	dir := t.TempDir()
	want, err := volume.New().Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(dir, strings.Repeat("n", 300)),
		filepath.Join(dir, strings.Repeat("n", 300), "store"),
	} {
		got, err := volume.New().Stat(p)
		if err != nil {
			t.Errorf("Stat of a %d-byte name: %v", 300, err)
			continue
		}
		if got.Root != want.Root || got.DevID != want.DevID || got.Fixed != want.Fixed {
			t.Errorf("Stat(%s...) = %s (dev %d), want the volume of %s: %s (dev %d)", p[:len(dir)+10], got.Root, got.DevID, dir, want.Root, want.DevID)
		}
	}
	if known, _ := volume.IsKnownFolder(filepath.Join("/etc", strings.Repeat("n", 300))); !known {
		t.Error("a too-long name below /etc is not in a known folder")
	}
}
