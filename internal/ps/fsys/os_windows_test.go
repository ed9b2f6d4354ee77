package fsys_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/fsys/fsystest"
	"github.com/wharf-project/wharf/internal/testenv/winetest"
)

// noLinks says why junctions cannot be made in dir, or "" when they can:
// under a Wine that lacks FSCTL_SET_REPARSE_POINT, the link parts of the
// suite are skipped naming the call. Anywhere else a failure to make one is
// the test's failure.
func noLinks(t *testing.T, dir string) string {
	t.Helper()
	target, link := filepath.Join(dir, "probe-target"), filepath.Join(dir, "probe-link")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(target)
	osfs := fsys.OS{}
	err := osfs.Symlink(target, link)
	if err == nil {
		if err := osfs.Remove(link); err != nil {
			t.Fatalf("remove the probe junction: %v", err)
		}
		return ""
	}
	if winetest.Version() != "" && winetest.Unsupported(err) {
		var errno windows.Errno
		errors.As(err, &errno)
		return fmt.Sprintf("WINE GAP: FSCTL_SET_REPARSE_POINT (junctions): %v (Wine %s)", errno, winetest.Version())
	}
	t.Fatalf("make a junction: %v", err)
	return ""
}

func hold(path string) (func(), error) { return winetest.Hold(path, false) }

// TestOSConformance runs the suite on the temp folder (C:), with a file
// held open by another process for CanRemove.
func TestOSConformance(t *testing.T) {
	fsystest.Run(t, func(t *testing.T) fsystest.Harness {
		dir := t.TempDir()
		return fsystest.Harness{FS: fsys.OS{}, Dir: dir, Hold: hold, NoLinks: noLinks(t, dir)}
	})
}

// TestOSConformanceOnVolumes runs the suite on the harness's D: drive (a
// loop-mounted volume) with E: (another one) as the other volume: renames
// between them must fail with ErrCrossDevice (MoveFileEx without
// MOVEFILE_COPY_ALLOWED answers ERROR_NOT_SAME_DEVICE).
func TestOSConformanceOnVolumes(t *testing.T) {
	d, e := winetest.Drive(t, "ext4", 0), winetest.Drive(t, "ext4", 1)
	fsystest.Run(t, func(t *testing.T) fsystest.Harness {
		dir := winetest.TempDir(t, d)
		return fsystest.Harness{FS: fsys.OS{}, Dir: dir, Other: winetest.TempDir(t, e), Hold: hold, NoLinks: noLinks(t, dir)}
	})
}

// TestCanRemoveHandles: a handle that does not share delete stops a
// removal, one that does (how serving opens files) does not; a read-only
// file stops it too.
func TestCanRemoveHandles(t *testing.T) {
	osfs := fsys.OS{}
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	file := filepath.Join(pkg, "sub", "file.bin")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}

	release, err := winetest.Hold(file, false)
	if err != nil {
		t.Fatal(err)
	}
	err = osfs.CanRemove(pkg)
	release()
	var re *fsys.RemovalError
	if !errors.As(err, &re) || re.Path != file || re.Reason != "another process holds it open" ||
		!errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
		t.Errorf("CanRemove with the file held without FILE_SHARE_DELETE = %v; want a RemovalError naming %s: another process holds it open", err, file)
	}

	release, err = winetest.Hold(file, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := osfs.CanRemove(pkg); err != nil {
		t.Errorf("CanRemove with the file held with FILE_SHARE_DELETE = %v, want nil", err)
	}
	release()

	// The folder itself held open (a shell's current folder, an Explorer
	// window): it cannot be renamed or removed either.
	release, err = winetest.Hold(filepath.Dir(file), false)
	if err != nil {
		t.Fatal(err)
	}
	err = osfs.CanRemove(pkg)
	release()
	if !errors.As(err, &re) || re.Path != filepath.Dir(file) {
		t.Errorf("CanRemove with a folder held open = %v, want a RemovalError naming %s", err, filepath.Dir(file))
	}

	if err := os.Chmod(file, 0o444); err != nil { // FILE_ATTRIBUTE_READONLY
		t.Fatal(err)
	}
	err = osfs.CanRemove(pkg)
	if !errors.As(err, &re) || re.Path != file || !errors.Is(err, fsys.ErrNotRemovable) || !strings.Contains(re.Reason, "read-only") {
		t.Errorf("CanRemove with a read-only file = %v, want a RemovalError naming it read-only", err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := osfs.CanRemove(pkg); err != nil {
		t.Errorf("CanRemove of a plain tree = %v", err)
	}
}

// TestLongPaths: the OS implementation reaches paths beyond MAX_PATH (260)
// through \\?\ names, in every call the engine makes.
func TestLongPaths(t *testing.T) {
	osfs := fsys.OS{}
	dir := t.TempDir()
	deep := dir
	for len(deep) < 700 {
		deep = filepath.Join(deep, strings.Repeat("d", 60))
		if err := osfs.Mkdir(deep, 0o755); err != nil {
			t.Fatalf("Mkdir of a %d-character path: %v", len(deep), err)
		}
	}
	name := filepath.Join(deep, "file.bin")
	f, err := osfs.Create(name, 0o644)
	if err != nil {
		t.Fatalf("Create(%d characters): %v", len(name), err)
	}
	if _, err := f.Write([]byte("long")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(deep, "moved.bin")
	if err := osfs.Rename(name, moved); err != nil {
		t.Fatalf("Rename(%d characters): %v", len(name), err)
	}
	r, err := osfs.Open(moved)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(b) != "long" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if err := osfs.CanRemove(filepath.Join(dir, strings.Repeat("d", 60))); err != nil {
		t.Errorf("CanRemove of a deep tree: %v", err)
	}
	if err := osfs.RemoveAll(filepath.Join(dir, strings.Repeat("d", 60))); err != nil {
		t.Fatalf("RemoveAll of a deep tree: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, strings.Repeat("d", 60))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deep tree is still there: %v", err)
	}
}

// TestJunction makes a junction as relocation's link fallback does, reads
// it, reads and lists through it, and removes it without touching the
// folder it points to.
func TestJunction(t *testing.T) {
	osfs := fsys.OS{}
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	if err := os.MkdirAll(filepath.Join(pkg, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "sub", "f"), []byte("through"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	err := osfs.Symlink(pkg, link)
	winetest.Gap(t, "FSCTL_SET_REPARSE_POINT (make a junction)", err)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := osfs.Lstat(link)
	if err != nil || !fsys.IsLink(fi) {
		t.Fatalf("Lstat(junction) = %v, %v; want a link", fi, err)
	}
	if got, err := osfs.Readlink(link); err != nil || got != pkg {
		t.Fatalf("Readlink(junction) = %q, %v; want %q", got, err, pkg)
	}
	if b, err := os.ReadFile(filepath.Join(link, "sub", "f")); err != nil || string(b) != "through" {
		t.Fatalf("read through the junction: %q, %v", b, err)
	}
	if err := osfs.Symlink(pkg, link); !errors.Is(err, os.ErrExist) {
		t.Errorf("a second junction over the first: %v, want ErrExist", err)
	}
	if err := osfs.Symlink("relative", filepath.Join(dir, "rel")); err == nil {
		t.Error("a junction to a relative path was made")
	}
	if err := osfs.RemoveAll(link); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pkg, "sub", "f")); err != nil {
		t.Errorf("removing the junction touched its target: %v", err)
	}
}
