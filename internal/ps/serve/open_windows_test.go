package serve

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/testenv/winetest"
)

func writePackage(t *testing.T) (pkg, file string) {
	t.Helper()
	pkg = filepath.Join(t.TempDir(), "pkg")
	file = filepath.Join(pkg, "sub", "file.bin")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("served while moving"), 0o644); err != nil {
		t.Fatal(err)
	}
	return pkg, file
}

// TestServingNeverBlocksAMove: while a file is open for serving, its
// package's folder can be checked by CanRemove, renamed, and the file
// removed, and the open file still reads — where a handle that does not
// share delete (as os.Root holds the folder) makes the rename fail.
func TestServingNeverBlocksAMove(t *testing.T) {
	pkg, _ := writePackage(t)
	osfs := fsys.OS{}

	// The platform enforces sharing: a folder held without FILE_SHARE_DELETE
	// cannot be renamed. (Otherwise this test would prove nothing.)
	d, err := os.Open(pkg)
	if err != nil {
		t.Fatal(err)
	}
	err = osfs.Rename(pkg, pkg+"-moved")
	d.Close()
	if !errors.Is(err, windows.ERROR_SHARING_VIOLATION) && !errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		t.Fatalf("rename of a folder held open without FILE_SHARE_DELETE: %v, want a sharing violation", err)
	}

	f, err := openIn(pkg, "sub/file.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := osfs.CanRemove(pkg); err != nil {
		t.Errorf("CanRemove while serving: %v", err)
	}
	moved := filepath.Join(filepath.Dir(pkg), "moved")
	if err := osfs.Rename(pkg, moved); err != nil {
		t.Fatalf("rename the package folder while serving: %v", err)
	}
	if size, regular, err := statOpen(f); err != nil || !regular || size != int64(len("served while moving")) {
		t.Errorf("statOpen of the served file after its folder moved: %d, %v, %v", size, regular, err)
	}
	// The file can be deleted while it is served; where the file system
	// keeps its name until the last handle closes (Windows before 10 1903,
	// Wine), its folder can only go after that — relocation journals such
	// a folder as a leftover and removes it later.
	if err := osfs.Remove(filepath.Join(moved, "sub", "file.bin")); err != nil {
		t.Errorf("delete the file while it is served: %v", err)
	}
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "served while moving" {
		t.Errorf("read the served file after its package moved and its name went: %q, %v", b, err)
	}
	f.Close()
	if err := osfs.RemoveAll(moved); err != nil {
		t.Errorf("remove the package once served: %v", err)
	}
}

func TestOpenInRefusals(t *testing.T) {
	pkg, _ := writePackage(t)
	for _, rel := range []string{"../pkg/sub/file.bin", "sub/../sub/file.bin", "sub//file.bin", "sub", "C:/Windows/win.ini", "sub/missing"} {
		if f, err := openIn(pkg, rel); err == nil {
			f.Close()
			t.Errorf("openIn(%q) worked", rel)
		}
	}
	if _, err := openIn(pkg, "sub/missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
	if _, err := openIn(filepath.Join(pkg, "gone"), "sub/file.bin"); !errors.Is(err, errFolderMissing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing folder: %v, want errFolderMissing", err)
	}
}

// TestOpenInRefusesJunctions: a junction planted in a package folder is not
// followed.
func TestOpenInRefusesJunctions(t *testing.T) {
	pkg, _ := writePackage(t)
	outside := filepath.Join(filepath.Dir(pkg), "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := fsys.OS{}.Symlink(outside, filepath.Join(pkg, "escape"))
	winetest.Gap(t, "FSCTL_SET_REPARSE_POINT (make a junction)", err)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := openIn(pkg, "escape/secret"); err == nil {
		f.Close()
		t.Fatal("openIn followed a junction out of the package")
	}
}
