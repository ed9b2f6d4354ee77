// Package fsystest is the conformance suite of fsys.FS: every
// implementation (the OS on a temp folder and on a loop-mounted volume,
// memfs, faultfs) runs the same tests, as testing/fstest.TestFS does for
// io/fs.
package fsystest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys"
)

// Harness is one file system under test.
type Harness struct {
	// FS is the implementation under test.
	FS fsys.FS
	// Dir is an existing, empty, writable folder on it.
	Dir string
	// Other, when not empty, is an existing, empty, writable folder on
	// another volume: renames from Dir to it must fail with
	// fsys.ErrCrossDevice.
	Other string
	// SetImmutable, when not nil, sets or clears the immutable attribute
	// of a path (chattr +i); the suite then checks CanRemove sees it.
	SetImmutable func(path string, on bool) error
	// Hold, when not nil, holds the file at path open the way another
	// process can (on Windows: without FILE_SHARE_DELETE) until release is
	// called; the suite then checks CanRemove sees it, and that it no
	// longer does once the file is released.
	Hold func(path string) (release func(), err error)
	// NoLinks, when not empty, says why the file system cannot make links
	// in Dir; the parts of the suite that need a link are skipped with it,
	// after the rest of their subtest ran.
	NoLinks string
}

// Run runs the suite; newHarness is called once per subtest and must give
// a fresh, empty Dir.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"CreateWriteRead", testCreate},
		{"Append", testAppend},
		{"Mkdir", testMkdir},
		{"ReadDir", testReadDir},
		{"StatLstat", testStat},
		{"Rename", testRename},
		{"RenameCrossDevice", testCrossDevice},
		{"Exchange", testExchange},
		{"Remove", testRemove},
		{"RemoveAll", testRemoveAll},
		{"Symlink", testSymlink},
		{"SyncDir", testSyncDir},
		{"CanRemove", testCanRemove},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newHarness(t)) })
	}
}

// symlink makes a link, or skips the rest of the subtest when the harness
// has none.
func symlink(t *testing.T, h Harness, target, link string) {
	t.Helper()
	if h.NoLinks != "" {
		t.Skip(h.NoLinks)
	}
	if err := h.FS.Symlink(target, link); err != nil {
		t.Fatalf("Symlink: %v", err)
	}
}

func write(t *testing.T, f fsys.FS, name string, data []byte) {
	t.Helper()
	h, err := f.Create(name, 0o644)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	if _, err := h.Write(data); err != nil {
		t.Fatalf("Write(%s): %v", name, err)
	}
	if err := h.Sync(); err != nil {
		t.Fatalf("Sync(%s): %v", name, err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close(%s): %v", name, err)
	}
}

func read(t *testing.T, f fsys.FS, name string) []byte {
	t.Helper()
	h, err := f.Open(name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer h.Close()
	b, err := io.ReadAll(h)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

func mkdir(t *testing.T, f fsys.FS, name string) {
	t.Helper()
	if err := f.Mkdir(name, 0o755); err != nil {
		t.Fatalf("Mkdir(%s): %v", name, err)
	}
}

func names(t *testing.T, f fsys.FS, dir string) []string {
	t.Helper()
	es, err := f.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir(%s): %v", dir, err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func exists(t *testing.T, f fsys.FS, name string) bool {
	t.Helper()
	_, err := f.Lstat(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Lstat(%s): %v", name, err)
	}
	return err == nil
}

func testCreate(t *testing.T, h Harness) {
	f, p := h.FS, filepath.Join(h.Dir, "a.txt")
	data := bytes.Repeat([]byte("wharf "), 10000)
	write(t, f, p, data)
	if got := read(t, f, p); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}
	fi, err := f.Stat(p)
	if err != nil || fi.Size() != int64(len(data)) || !fi.Mode().IsRegular() || fi.Name() != "a.txt" {
		t.Fatalf("Stat = %v, %v; want a regular file of %d bytes named a.txt", fi, err, len(data))
	}
	if _, err := f.Create(p, 0o644); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file: %v, want fs.ErrExist", err)
	}
	if got := read(t, f, p); !bytes.Equal(got, data) {
		t.Fatal("a failed Create changed the file")
	}
	if _, err := f.Create(filepath.Join(h.Dir, "missing", "b"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Create in a missing folder: %v, want fs.ErrNotExist", err)
	}
	if _, err := f.Open(filepath.Join(h.Dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(missing): %v, want fs.ErrNotExist", err)
	}
	hf, err := f.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := hf.Stat(); err != nil || fi.Size() != int64(len(data)) {
		t.Fatalf("File.Stat = %v, %v", fi, err)
	}
	hf.Close()
}

func testAppend(t *testing.T, h Harness) {
	f, p := h.FS, filepath.Join(h.Dir, "part.bin")
	// A missing file is created.
	a, err := f.Append(p, 0o644)
	if err != nil {
		t.Fatalf("Append(missing): %v", err)
	}
	if b, err := io.ReadAll(a); err != nil || len(b) != 0 {
		t.Fatalf("read a new file: %q, %v", b, err)
	}
	if _, err := a.Write([]byte("first ")); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// An existing file is read from its start, and written at its end.
	a, err = f.Append(p, 0o644)
	if err != nil {
		t.Fatalf("Append(existing): %v", err)
	}
	head := make([]byte, 3)
	if _, err := io.ReadFull(a, head); err != nil || string(head) != "fir" {
		t.Fatalf("read the start: %q, %v", head, err)
	}
	if _, err := a.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, f, p); string(got) != "first second" {
		t.Fatalf("content %q, want %q", got, "first second")
	}
	if _, err := f.Append(filepath.Join(h.Dir, "missing", "x"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Append in a missing folder: %v, want fs.ErrNotExist", err)
	}
}

func testMkdir(t *testing.T, h Harness) {
	f, d := h.FS, filepath.Join(h.Dir, "d")
	mkdir(t, f, d)
	if fi, err := f.Stat(d); err != nil || !fi.IsDir() {
		t.Fatalf("Stat(%s) = %v, %v; want a folder", d, fi, err)
	}
	if err := f.Mkdir(d, 0o755); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Mkdir twice: %v, want fs.ErrExist", err)
	}
	if err := f.Mkdir(filepath.Join(h.Dir, "x", "y"), 0o755); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Mkdir without parent: %v, want fs.ErrNotExist", err)
	}
}

func testReadDir(t *testing.T, h Harness) {
	f := h.FS
	for _, n := range []string{"c", "a", "b"} {
		write(t, f, filepath.Join(h.Dir, n), []byte(n))
	}
	mkdir(t, f, filepath.Join(h.Dir, "d"))
	if got, want := names(t, f, h.Dir), []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("ReadDir = %q, want %q", got, want)
	}
	es, _ := f.ReadDir(h.Dir)
	if !es[3].IsDir() || es[0].IsDir() {
		t.Fatal("ReadDir entries do not tell folders from files")
	}
	if _, err := f.ReadDir(filepath.Join(h.Dir, "zz")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadDir(missing): %v", err)
	}
}

func testStat(t *testing.T, h Harness) {
	f := h.FS
	d := filepath.Join(h.Dir, "d")
	mkdir(t, f, d)
	if _, err := f.Stat(filepath.Join(h.Dir, "no")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing) = %v", err)
	}
	if _, err := f.Lstat(filepath.Join(h.Dir, "no")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Lstat(missing) = %v", err)
	}
	if fi, err := f.Lstat(d); err != nil || fsys.IsLink(fi) || !fi.IsDir() {
		t.Fatalf("Lstat(folder) = %v, %v; want a folder", fi, err)
	}
	link := filepath.Join(h.Dir, "l")
	symlink(t, h, d, link)
	fi, err := f.Lstat(link)
	if err != nil || !fsys.IsLink(fi) || fi.IsDir() {
		t.Fatalf("Lstat(link) = %v, %v; want a link", fi, err)
	}
	fi, err = f.Stat(link)
	if err != nil || !fi.IsDir() {
		t.Fatalf("Stat(link) = %v, %v; want the folder", fi, err)
	}
}

func testRename(t *testing.T, h Harness) {
	f := h.FS
	a, b := filepath.Join(h.Dir, "a"), filepath.Join(h.Dir, "b")
	write(t, f, a, []byte("A"))
	write(t, f, b, []byte("B"))
	if err := f.Rename(a, b); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Rename onto an existing file: %v, want fs.ErrExist", err)
	}
	if string(read(t, f, a)) != "A" || string(read(t, f, b)) != "B" {
		t.Fatal("a refused rename changed the files")
	}
	c := filepath.Join(h.Dir, "c")
	if err := f.Rename(a, c); err != nil {
		t.Fatalf("Rename file: %v", err)
	}
	if exists(t, f, a) || string(read(t, f, c)) != "A" {
		t.Fatal("file rename did not move the file")
	}
	d, e := filepath.Join(h.Dir, "d"), filepath.Join(h.Dir, "e")
	mkdir(t, f, d)
	write(t, f, filepath.Join(d, "x"), []byte("X"))
	if err := f.Rename(d, e); err != nil {
		t.Fatalf("Rename folder: %v", err)
	}
	if exists(t, f, d) || string(read(t, f, filepath.Join(e, "x"))) != "X" {
		t.Fatal("folder rename did not move the folder")
	}
	mkdir(t, f, d)
	if err := f.Rename(e, d); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Rename folder onto an empty folder: %v, want fs.ErrExist", err)
	}
	if err := f.Rename(filepath.Join(h.Dir, "missing"), filepath.Join(h.Dir, "m2")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Rename(missing) = %v, want fs.ErrNotExist", err)
	}
}

func testCrossDevice(t *testing.T, h Harness) {
	if h.Other == "" {
		t.Skip("no second volume in this harness")
	}
	f := h.FS
	a := filepath.Join(h.Dir, "a")
	write(t, f, a, []byte("A"))
	err := f.Rename(a, filepath.Join(h.Other, "a"))
	if !errors.Is(err, fsys.ErrCrossDevice) {
		t.Fatalf("Rename across volumes: %v, want fsys.ErrCrossDevice", err)
	}
	d := filepath.Join(h.Dir, "d")
	mkdir(t, f, d)
	if err := f.Rename(d, filepath.Join(h.Other, "d")); !errors.Is(err, fsys.ErrCrossDevice) {
		t.Fatalf("Rename folder across volumes: %v, want fsys.ErrCrossDevice", err)
	}
	if !exists(t, f, a) || !exists(t, f, d) || exists(t, f, filepath.Join(h.Other, "a")) {
		t.Fatal("a refused cross-device rename changed something")
	}
}

func testExchange(t *testing.T, h Harness) {
	f := h.FS
	d, l := filepath.Join(h.Dir, "real"), filepath.Join(h.Dir, "link")
	mkdir(t, f, d)
	write(t, f, filepath.Join(d, "x"), []byte("X"))
	other := filepath.Join(h.Dir, "other")
	mkdir(t, f, other)
	symlink(t, h, other, l)
	err := f.Exchange(d, l)
	if errors.Is(err, errors.ErrUnsupported) {
		if fi, err := f.Lstat(l); err != nil || !fsys.IsLink(fi) {
			t.Fatal("an unsupported Exchange changed something")
		}
		t.Skip("Exchange unsupported here")
	}
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if fi, err := f.Lstat(d); err != nil || !fsys.IsLink(fi) {
		t.Fatalf("after Exchange %s is %v, %v; want the link", d, fi, err)
	}
	if fi, err := f.Lstat(l); err != nil || fsys.IsLink(fi) || !fi.IsDir() {
		t.Fatalf("after Exchange %s is %v, %v; want the folder", l, fi, err)
	}
	if string(read(t, f, filepath.Join(l, "x"))) != "X" {
		t.Fatal("the folder's content did not follow the exchange")
	}
	if err := f.Exchange(d, filepath.Join(h.Dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Exchange with a missing name: %v, want fs.ErrNotExist", err)
	}
}

func testRemove(t *testing.T, h Harness) {
	f := h.FS
	d := filepath.Join(h.Dir, "d")
	mkdir(t, f, d)
	p := filepath.Join(d, "x")
	write(t, f, p, []byte("X"))
	if err := f.Remove(d); err == nil {
		t.Fatal("Remove of a non-empty folder worked")
	}
	e := filepath.Join(h.Dir, "e")
	mkdir(t, f, e)
	if err := f.Remove(e); err != nil {
		t.Fatalf("Remove(empty folder): %v", err)
	}
	if err := f.Remove(e); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Remove(missing) = %v", err)
	}
	l := filepath.Join(h.Dir, "l")
	symlink(t, h, d, l)
	if err := f.Remove(l); err != nil {
		t.Fatalf("Remove(link): %v", err)
	}
	if !exists(t, f, p) {
		t.Fatal("removing a link removed its target's content")
	}
	if err := f.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(d); err != nil {
		t.Fatalf("Remove(emptied folder): %v", err)
	}
}

func testRemoveAll(t *testing.T, h Harness) {
	f := h.FS
	keep := filepath.Join(h.Dir, "keep")
	mkdir(t, f, keep)
	write(t, f, filepath.Join(keep, "k"), []byte("K"))
	tree := filepath.Join(h.Dir, "tree")
	mkdir(t, f, tree)
	mkdir(t, f, filepath.Join(tree, "sub"))
	write(t, f, filepath.Join(tree, "sub", "f"), []byte("F"))
	write(t, f, filepath.Join(tree, "g"), []byte("G"))
	plain := filepath.Join(h.Dir, "plain")
	mkdir(t, f, plain)
	mkdir(t, f, filepath.Join(plain, "sub"))
	write(t, f, filepath.Join(plain, "sub", "f"), []byte("F"))
	if err := f.RemoveAll(plain); err != nil || exists(t, f, plain) {
		t.Fatalf("RemoveAll(tree without links) = %v; gone: %v", err, !exists(t, f, plain))
	}
	symlink(t, h, keep, filepath.Join(tree, "link"))
	if err := f.RemoveAll(tree); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if exists(t, f, tree) {
		t.Fatal("RemoveAll left the tree")
	}
	if string(read(t, f, filepath.Join(keep, "k"))) != "K" {
		t.Fatal("RemoveAll followed a link")
	}
	if err := f.RemoveAll(tree); err != nil {
		t.Fatalf("RemoveAll(missing) = %v, want nil", err)
	}
}

func testSymlink(t *testing.T, h Harness) {
	f := h.FS
	d := filepath.Join(h.Dir, "pkg")
	mkdir(t, f, d)
	mkdir(t, f, filepath.Join(d, "sub"))
	write(t, f, filepath.Join(d, "sub", "file"), []byte("through the link"))
	if _, err := f.Readlink(d); err == nil {
		t.Fatal("Readlink of a folder worked")
	}
	l := filepath.Join(h.Dir, "link")
	symlink(t, h, d, l)
	if got, err := f.Readlink(l); err != nil || filepath.Clean(got) != d {
		t.Fatalf("Readlink = %q, %v; want %q", got, err, d)
	}
	if got := read(t, f, filepath.Join(l, "sub", "file")); string(got) != "through the link" {
		t.Fatalf("read through link = %q", got)
	}
	if got := names(t, f, l); !slices.Equal(got, []string{"sub"}) {
		t.Fatalf("ReadDir through link = %q", got)
	}
	if err := f.Symlink(d, l); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Symlink over an existing name: %v, want fs.ErrExist", err)
	}
}

func testSyncDir(t *testing.T, h Harness) {
	f := h.FS
	write(t, f, filepath.Join(h.Dir, "a"), nil)
	if err := f.SyncDir(h.Dir); err != nil {
		t.Fatalf("SyncDir: %v", err)
	}
	if err := f.SyncDir(filepath.Join(h.Dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir(missing) = %v", err)
	}
}

func testCanRemove(t *testing.T, h Harness) {
	f := h.FS
	d := filepath.Join(h.Dir, "pkg")
	mkdir(t, f, d)
	mkdir(t, f, filepath.Join(d, "sub"))
	p := filepath.Join(d, "sub", "file")
	write(t, f, p, []byte("x"))
	if err := f.CanRemove(d); err != nil {
		t.Fatalf("CanRemove(plain tree) = %v", err)
	}
	if err := f.CanRemove(filepath.Join(h.Dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("CanRemove(missing) = %v, want fs.ErrNotExist", err)
	}
	if h.Hold != nil {
		testHeld(t, h, d, p)
	}
	if h.SetImmutable == nil {
		return
	}
	if err := h.SetImmutable(p, true); err != nil {
		t.Fatalf("set immutable: %v", err)
	}
	t.Cleanup(func() {
		if err := h.SetImmutable(p, false); err != nil {
			t.Errorf("clear immutable: %v", err)
		}
	})
	err := f.CanRemove(d)
	var re *fsys.RemovalError
	if !errors.Is(err, fsys.ErrNotRemovable) || !errors.As(err, &re) || re.Path != p {
		t.Fatalf("CanRemove(tree with an immutable file) = %v, want ErrNotRemovable naming %s", err, p)
	}
	if err := f.RemoveAll(d); err == nil {
		t.Fatal("RemoveAll removed an immutable file")
	}
	if !exists(t, f, p) {
		t.Fatal("the immutable file is gone")
	}
	if err := h.SetImmutable(p, false); err != nil {
		t.Fatal(err)
	}
	if err := f.CanRemove(d); err != nil {
		t.Fatalf("CanRemove after clearing the attribute = %v", err)
	}
}

// testHeld checks CanRemove on a tree with a file held open by another
// process, and after its release.
func testHeld(t *testing.T, h Harness, d, p string) {
	release, err := h.Hold(p)
	if err != nil {
		t.Fatalf("hold %s open: %v", p, err)
	}
	held := true
	defer func() {
		if held {
			release()
		}
	}()
	err = h.FS.CanRemove(d)
	var re *fsys.RemovalError
	if !errors.Is(err, fsys.ErrNotRemovable) || !errors.As(err, &re) || re.Path != p {
		t.Fatalf("CanRemove(tree with a held file) = %v, want ErrNotRemovable naming %s", err, p)
	}
	if !exists(t, h.FS, p) {
		t.Fatal("CanRemove removed the held file")
	}
	release()
	held = false
	if err := h.FS.CanRemove(d); err != nil {
		t.Fatalf("CanRemove after the file was released = %v", err)
	}
}
