package volume_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/testenv/winetest"
)

// TestDriveTypes: the fixed-media verdict comes from GetDriveType, the file
// system from GetVolumeInformation, for every kind of drive the harness
// maps: C: and the D: volume (fixed), a CD-ROM, a network and a removable
// drive (refused, each with its reason).
func TestDriveTypes(t *testing.T) {
	facts := volume.New()
	tests := []struct {
		path       string
		fixed      bool
		reason     string
		supported  bool
		fsType     string // "" for any
		fsTypeWine string // what Wine reports instead, when it differs
	}{
		{path: t.TempDir(), fixed: true, supported: true, fsType: "NTFS"},
		{path: winetest.Drive(t, "ext4", 0), fixed: true, supported: true, fsType: "NTFS"},
		{path: winetest.Drive(t, "cdrom", 0), reason: "CD/DVD drive", fsType: "CDFS"},
		{path: winetest.Drive(t, "network", 0), reason: "network drive"},
		{path: winetest.Drive(t, "removable", 0), reason: "removable drive"},
	}
	for _, tt := range tests {
		info, err := facts.Stat(filepath.Join(tt.path, "not", "yet", "made"))
		if err != nil {
			t.Errorf("Stat(%s): %v", tt.path, err)
			continue
		}
		t.Logf("%s: root %s, device %s, %s, fixed %v %q, supported %v %q, %d of %d MiB free",
			tt.path, info.Root, info.Device, info.FSType, info.Fixed, info.FixedReason, info.Supported,
			info.SupportedReason, info.AvailBytes>>20, info.TotalBytes>>20)
		if info.Fixed != tt.fixed || info.FixedReason != tt.reason {
			t.Errorf("Stat(%s): fixed %v %q, want %v %q", tt.path, info.Fixed, info.FixedReason, tt.fixed, tt.reason)
		}
		if tt.supported && !info.Supported {
			t.Errorf("Stat(%s): file system %s refused: %s", tt.path, info.FSType, info.SupportedReason)
		}
		if tt.fsType != "" && !strings.EqualFold(info.FSType, tt.fsType) {
			t.Errorf("Stat(%s): file system %q, want %q", tt.path, info.FSType, tt.fsType)
		}
		if !strings.EqualFold(filepath.VolumeName(tt.path)+`\`, info.Root) {
			t.Errorf("Stat(%s): root %q, want the drive's", tt.path, info.Root)
		}
		if info.TotalBytes == 0 || info.AvailBytes > info.TotalBytes {
			t.Errorf("Stat(%s): %d of %d bytes free", tt.path, info.AvailBytes, info.TotalBytes)
		}
	}

	// The two harness volumes are told apart (rotation picks by volume).
	d, e := winetest.Drive(t, "ext4", 0), winetest.Drive(t, "ext4", 1)
	di, err1 := facts.Stat(d)
	ei, err2 := facts.Stat(e)
	if err1 != nil || err2 != nil || di.Root == ei.Root || di.Device == ei.Device {
		t.Errorf("D: and E: not told apart: %+v, %v; %+v, %v", di, err1, ei, err2)
	}
	if di.TotalBytes > 200<<20 {
		t.Errorf("D: reports %d MiB, not the size of its 128 MiB volume", di.TotalBytes>>20)
	}

	vols, err := facts.Volumes()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]volume.Info{}
	for _, v := range vols {
		seen[strings.ToUpper(v.Root)] = v
	}
	for _, want := range []string{`C:\`, d, e} {
		if v, ok := seen[want]; !ok || !v.Fixed {
			t.Errorf("Volumes() lacks fixed %s: %+v", want, seen)
		}
	}
	if v, ok := seen[winetest.Drive(t, "cdrom", 0)]; ok && v.Fixed {
		t.Errorf("Volumes() reports the CD-ROM drive fixed")
	}
}

// TestFileSystemNames: NTFS and ReFS are supported, FAT, FAT32, exFAT and
// the optical file systems refused, as GetVolumeInformation names them.
func TestFileSystemNames(t *testing.T) {
	for _, fs := range []string{"NTFS", "ReFS", "ntfs", "REFS"} {
		if ok, why := volume.SupportedFS("windows", fs); !ok {
			t.Errorf("%s refused: %s", fs, why)
		}
	}
	for _, fs := range []string{"FAT", "FAT32", "exFAT", "CDFS", "UDF", ""} {
		if ok, _ := volume.SupportedFS("windows", fs); ok {
			t.Errorf("%s supported", fs)
		}
	}
}

// TestKnownFolders: every known folder of SPEC §6.1.4, as the shell names
// it (SHGetKnownFolderPath), is refused with what lies below it, however the
// path is spelled; other folders are not.
func TestKnownFolders(t *testing.T) {
	ids := []struct {
		name string
		id   *windows.KNOWNFOLDERID
	}{
		{"FOLDERID_Windows", windows.FOLDERID_Windows},
		{"FOLDERID_ProgramFiles", windows.FOLDERID_ProgramFiles},
		{"FOLDERID_ProgramFilesX86", windows.FOLDERID_ProgramFilesX86},
		{"FOLDERID_ProgramData", windows.FOLDERID_ProgramData},
		{"FOLDERID_UserProfiles", windows.FOLDERID_UserProfiles},
	}
	for _, f := range ids {
		dir, err := windows.KnownFolderPath(f.id, windows.KF_FLAG_DEFAULT)
		if err != nil {
			t.Errorf("%s: %v", f.name, err)
			continue
		}
		t.Logf("%s is %s", f.name, dir)
		for _, p := range []string{
			dir,
			dir + `\`,
			filepath.Join(dir, "Wharf", "Package Delivery"),
			strings.ToUpper(dir) + `\store`,
			strings.ToLower(dir) + `\store`,
			`\\?\` + dir + `\store`,
			filepath.Join(dir, "sub") + `\..\store`,
			strings.ReplaceAll(dir, `\`, `/`) + "/store",
		} {
			if ok, folder := volume.IsKnownFolder(p); !ok || !strings.EqualFold(folder, dir) {
				t.Errorf("IsKnownFolder(%q) = %v, %q; want true, %q (%s)", p, ok, folder, dir, f.name)
			}
		}
	}
	root := winetest.Drive(t, "ext4", 0)
	for _, p := range []string{root, filepath.Join(root, "Wharf", "store"), `C:\Wharf\store`, `C:\Windows2\store`, `C:\Program Files Extra\x`} {
		if ok, folder := volume.IsKnownFolder(p); ok {
			t.Errorf("IsKnownFolder(%q) = true (%q), want false", p, folder)
		}
	}
}

// TestPathLimit: Windows counts 8,184 UTF-16 characters for a whole path,
// a character outside the BMP as two.
func TestPathLimit(t *testing.T) {
	l := volume.DefaultLimits()
	if l.MaxPath != 8184 || !l.UTF16 {
		t.Fatalf("DefaultLimits() = %+v, want 8184 UTF-16 characters", l)
	}
	target := `D:\Wharf\Package Delivery`
	pkg := `0b9c4f3e-1d2a-4c5b-8e7f-6a5b4c3d2e1f`
	// target \ pkg \ rel: len(target) + 1 + len(pkg) + 1 + len(rel).
	room := 8184 - len(target) - 1 - len(pkg) - 1
	rel := pkg + "/" + strings.Repeat("a", room-2) + "😀" // the emoji counts 2
	if err := volume.CheckPathLength(target, rel); err != nil {
		t.Errorf("a path of exactly 8184 characters: %v", err)
	}
	rel = pkg + "/" + strings.Repeat("a", room-1) + "😀"
	err := volume.CheckPathLength(target, rel)
	if !errors.Is(err, volume.ErrPathTooLong) || !strings.Contains(err.Error(), "8185") {
		t.Errorf("a path of 8185 characters: %v, want ErrPathTooLong naming 8185", err)
	}
}

// TestPathAtTheLimitOnDisk makes a file whose path is 8,184 characters long
// through fsys.OS, as a relocation would, and reads it back.
func TestPathAtTheLimitOnDisk(t *testing.T) {
	osfs := fsys.OS{}
	root := winetest.TempDir(t, winetest.Drive(t, "ext4", 0))
	dir := root
	for len(dir) < 8184-300 {
		dir = filepath.Join(dir, strings.Repeat("p", 200))
		err := osfs.Mkdir(dir, 0o755)
		var errno windows.Errno
		if errors.As(err, &errno) && len(dir) > 4000 && winetest.Version() != "" &&
			(errno == windows.ERROR_GEN_FAILURE || errno == windows.ERROR_FILENAME_EXCED_RANGE || errno == windows.ERROR_PATH_NOT_FOUND) {
			winetest.SkipGap(t, fmt.Sprintf("CreateDirectoryW at %d characters", len(dir)),
				fmt.Sprintf("%q: Wine maps a name to one Unix path, which Linux limits to PATH_MAX (4096 bytes)", errno.Error()))
		}
		if err != nil {
			t.Fatalf("Mkdir at %d characters: %v", len(dir), err)
		}
	}
	name := filepath.Join(dir, strings.Repeat("f", 8184-len(dir)-1))
	if len(name) != 8184 {
		t.Fatalf("built a %d-character name", len(name))
	}
	f, err := osfs.Create(name, 0o644)
	if err != nil {
		t.Fatalf("Create at 8184 characters: %v", err)
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := os.Stat(name); err != nil {
		t.Fatal(err)
	}
}
