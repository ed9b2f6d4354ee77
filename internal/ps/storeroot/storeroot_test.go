package storeroot_test

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
)

const server = "ps-test"

func names(t *testing.T, f fsys.FS, dir string) []string {
	t.Helper()
	es, err := f.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("ReadDir(%s): %v", dir, err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func exists(f fsys.FS, name string) bool {
	_, err := f.Lstat(name)
	return err == nil
}

func TestIsOwn(t *testing.T) {
	for _, tc := range []struct {
		name string
		own  bool
	}{
		{".wharf-store", true},
		{".wharf-store.tmp", true},
		{".wharf-store.tmp-3f2a9c", true}, // what durable.WriteFile left before this package
		{".wharf-tmp", true},
		{".wharf-relocate", true},
		{".wharf-trash", true},
		{".wharf-probe-1700000000", true},
		{"6f1c0a56-1a7e-4c1a-9d55-3d6c4a2b9e10", false},
		{"lost+found", false},
		{"notes.txt", false},
		{".wharf-storage", false},
	} {
		if got := storeroot.IsOwn(tc.name); got != tc.own {
			t.Errorf("IsOwn(%q) = %v, want %v", tc.name, got, tc.own)
		}
	}
}

func TestPrepareMarksAndIsDurable(t *testing.T) {
	mem := memfs.New()
	roots := storeroot.New(mem, server, nil)
	root := "/data/a/b/Package Delivery"
	if err := roots.Prepare(root); err != nil {
		t.Fatal(err)
	}
	m, err := roots.ReadMarker(root)
	if err != nil || m.Server != server || !m.MadeRoot || m.Created.IsZero() {
		t.Fatalf("marker = %+v, %v; want this server's, made_root, dated", m, err)
	}
	if mem.Pending() != 0 {
		t.Errorf("%d changes not durable after Prepare", mem.Pending())
	}
	mem.Crash()
	if ok, err := roots.HasMarker(root); !ok || err != nil {
		t.Fatalf("after a crash: HasMarker = %v, %v", ok, err)
	}
	// A second Prepare keeps the marker as it is.
	before, _ := mem.ReadFile(filepath.Join(root, storeroot.MarkerName))
	if err := roots.Prepare(root); err != nil {
		t.Fatal(err)
	}
	after, _ := mem.ReadFile(filepath.Join(root, storeroot.MarkerName))
	if string(before) != string(after) {
		t.Errorf("Prepare rewrote an existing marker: %s → %s", before, after)
	}
	// An existing folder is marked, not made.
	if err := mem.MkdirAll("/data/existing"); err != nil {
		t.Fatal(err)
	}
	if err := roots.Prepare("/data/existing"); err != nil {
		t.Fatal(err)
	}
	if m, _ := roots.ReadMarker("/data/existing"); m.MadeRoot {
		t.Error("made_root set on a folder that existed")
	}
}

// TestPrepareCrashMatrix crashes Prepare at every file-system operation:
// afterwards the root has no marker or a whole one, and anything else in it
// is Wharf's own, so the folder is still empty as a relocation target sees
// it; a new Prepare then finishes the job.
func TestPrepareCrashMatrix(t *testing.T) {
	clean := faultfs.New(memfs.New())
	if err := storeroot.New(clean, server, nil).Prepare("/v/root"); err != nil {
		t.Fatal(err)
	}
	n := clean.Ops()
	for k := 0; k <= n; k++ {
		mem := memfs.New()
		ff := faultfs.New(mem)
		ff.CrashAt(k)
		_ = storeroot.New(ff, server, nil).Prepare("/v/root")
		mem.Crash()
		roots := storeroot.New(mem, server, nil)
		for _, name := range names(t, mem, "/v/root") {
			if !storeroot.IsOwn(name) {
				t.Errorf("crash at op %d of %d: %s left in the root", k, n, name)
			}
		}
		if data, err := mem.ReadFile("/v/root/" + storeroot.MarkerName); err == nil {
			var m storeroot.Marker
			if err := json.Unmarshal(data, &m); err != nil || m.Server != server {
				t.Errorf("crash at op %d: marker %q is not whole: %v", k, data, err)
			}
		}
		if err := roots.Prepare("/v/root"); err != nil {
			t.Fatalf("crash at op %d: Prepare again: %v", k, err)
		}
		if got := names(t, mem, "/v/root"); !slices.Equal(got, []string{storeroot.MarkerName}) {
			t.Errorf("crash at op %d: after a new Prepare the root holds %v", k, got)
		}
	}
}

func TestRetire(t *testing.T) {
	type setup func(t *testing.T, mem *memfs.FS, roots *storeroot.Roots, root string)
	for _, tc := range []struct {
		name        string
		root        string
		setup       setup
		pre         setup // before Prepare
		gone        bool  // Retire reports the root gone
		folderStays bool  // the folder itself stays (Wharf did not make it)
	}{
		{name: "empty bookkeeping goes, folder too", root: "/v/Package Delivery", gone: true,
			setup: func(t *testing.T, mem *memfs.FS, roots *storeroot.Roots, root string) {
				mkdirs(t, mem, root+"/.wharf-tmp", root+"/.wharf-relocate", root+"/.wharf-trash/old-1/x")
			}},
		{name: "a folder Wharf did not make loses only the marker", root: "/v/custom", gone: true, folderStays: true,
			pre: func(t *testing.T, mem *memfs.FS, roots *storeroot.Roots, root string) {
				mkdirs(t, mem, root)
			}},
		{name: "a package keeps it", root: "/v/store",
			setup: func(t *testing.T, mem *memfs.FS, roots *storeroot.Roots, root string) {
				mkdirs(t, mem, root+"/6f1c0a56-1a7e-4c1a-9d55-3d6c4a2b9e10")
			}},
		{name: "somebody else's file keeps it", root: "/v/store",
			setup: func(t *testing.T, mem *memfs.FS, roots *storeroot.Roots, root string) {
				if err := mem.WriteFile(root+"/README", []byte("mine")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "a download under way keeps it", root: "/v/store",
			setup: func(t *testing.T, mem *memfs.FS, roots *storeroot.Roots, root string) {
				mkdirs(t, mem, root+"/.wharf-tmp/6f1c0a56-1a7e-4c1a-9d55-3d6c4a2b9e10")
			}},
		{name: "a copy under way keeps it", root: "/v/store",
			setup: func(t *testing.T, mem *memfs.FS, roots *storeroot.Roots, root string) {
				mkdirs(t, mem, root+"/.wharf-relocate/6f1c0a56-1a7e-4c1a-9d55-3d6c4a2b9e10")
			}},
		{name: "a pinned root stays", root: "/v/store",
			setup: func(t *testing.T, mem *memfs.FS, roots *storeroot.Roots, root string) {
				release := roots.Acquire(root)
				t.Cleanup(release)
			}},
		{name: "another server's root stays", root: "/v/store",
			pre: func(t *testing.T, mem *memfs.FS, roots *storeroot.Roots, root string) {
				if err := mem.WriteFile(root+"/.wharf-store", []byte(`{"server":"ps-other"}`)); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memfs.New()
			roots := storeroot.New(mem, server, nil)
			if tc.pre != nil {
				tc.pre(t, mem, roots, tc.root)
			}
			if err := roots.Prepare(tc.root); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, mem, roots, tc.root)
			}
			before := names(t, mem, tc.root)
			gone, err := roots.Retire(tc.root)
			if err != nil || gone != tc.gone {
				t.Fatalf("Retire = %v, %v; want %v", gone, err, tc.gone)
			}
			mem.Crash() // what Retire did is durable
			switch {
			case !tc.gone:
				if got := names(t, mem, tc.root); !slices.Equal(got, before) {
					t.Errorf("a root that stays changed: %v → %v", before, got)
				}
			case tc.folderStays:
				if got := names(t, mem, tc.root); len(got) != 0 || !exists(mem, tc.root) {
					t.Errorf("folder %s: exists %v, holds %v; want it empty and there", tc.root, exists(mem, tc.root), got)
				}
			default:
				if exists(mem, tc.root) {
					t.Errorf("root %s still there: %v", tc.root, names(t, mem, tc.root))
				}
			}
		})
	}
}

func mkdirs(t *testing.T, mem *memfs.FS, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := mem.MkdirAll(d); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTrashAndEmptyTrash(t *testing.T) {
	mem := memfs.New()
	roots := storeroot.New(mem, server, nil)
	root := "/v/root"
	if err := roots.Prepare(root); err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteFile(root+"/pkg/a/b/f", []byte("f")); err != nil {
		t.Fatal(err)
	}
	if err := roots.Trash(root, root+"/pkg"); err != nil {
		t.Fatal(err)
	}
	if exists(mem, root+"/pkg") {
		t.Error("package folder still there")
	}
	if got := names(t, mem, root+"/.wharf-trash"); len(got) != 0 {
		t.Errorf("trash holds %v", got)
	}
	if err := roots.Trash(root, root+"/pkg"); err != nil {
		t.Errorf("trash a missing folder: %v", err)
	}
	// What a crash leaves in the trash, EmptyTrash removes.
	mkdirs(t, mem, root+"/.wharf-trash/left-1/x")
	if err := roots.EmptyTrash(root); err != nil {
		t.Fatal(err)
	}
	if got := names(t, mem, root+"/.wharf-trash"); len(got) != 0 {
		t.Errorf("after EmptyTrash: %v", got)
	}
	if err := roots.EmptyTrash("/v/none"); err != nil {
		t.Errorf("EmptyTrash of a missing root: %v", err)
	}
}

// TestStagingCrashMatrix writes a package through a Staging and places it,
// crashing at every file-system operation: afterwards the package is
// absent or whole under its name, never in part.
func TestStagingCrashMatrix(t *testing.T) {
	files := map[string]string{"a.txt": "alpha", "d/e/b.txt": "beta", "d/c.txt": "gamma"}
	write := func(f fsys.FS) error {
		roots := storeroot.New(f, server, nil)
		if err := roots.Prepare("/v/root"); err != nil {
			return err
		}
		s := roots.StageDownload("/v/root", "pkg")
		if err := s.Open(); err != nil {
			return err
		}
		for _, rel := range []string{"a.txt", "d/e/b.txt", "d/c.txt"} {
			h, err := s.Create(rel)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(h, files[rel]); err != nil {
				h.Close()
				return err
			}
			if err := h.Sync(); err != nil {
				h.Close()
				return err
			}
			if err := h.Close(); err != nil {
				return err
			}
		}
		if err := s.SyncFolders(); err != nil {
			return err
		}
		return s.Place("/v/root/pkg")
	}
	clean := faultfs.New(memfs.New())
	if err := write(clean); err != nil {
		t.Fatal(err)
	}
	n := clean.Ops()
	for k := 0; k <= n; k++ {
		mem := memfs.New()
		ff := faultfs.New(mem)
		ff.CrashAt(k)
		err := write(ff)
		mem.Crash()
		if !exists(mem, "/v/root/pkg") {
			if err == nil {
				t.Errorf("crash at op %d of %d: Place returned nil but the package is gone", k, n)
			}
			continue
		}
		for rel, want := range files {
			got, rerr := mem.ReadFile("/v/root/pkg/" + rel)
			if rerr != nil || string(got) != want {
				t.Errorf("crash at op %d of %d: %s = %q, %v; want %q", k, n, rel, got, rerr, want)
			}
		}
	}
}

func TestStagingResumeAndDiscard(t *testing.T) {
	mem := memfs.New()
	roots := storeroot.New(mem, server, nil)
	if err := roots.Prepare("/v/root"); err != nil {
		t.Fatal(err)
	}
	s := roots.StageDownload("/v/root", "pkg")
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	h, err := s.Append("dir/f.bin")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(h, "01234")
	h.Close()
	// A new attempt (a restart) reads what is there and appends.
	s = roots.StageDownload("/v/root", "pkg")
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	h, err = s.Append("dir/f.bin")
	if err != nil {
		t.Fatal(err)
	}
	have, _ := io.ReadAll(h)
	io.WriteString(h, "56789")
	h.Close()
	if string(have) != "01234" {
		t.Fatalf("resumed with %q", have)
	}
	if got, _ := mem.ReadFile(s.Path("dir/f.bin")); string(got) != "0123456789" {
		t.Fatalf("file %q", got)
	}
	if _, err := s.Create("../escape"); err == nil {
		t.Error("Create accepted a path that leaves the staging folder")
	}
	if err := s.Discard(); err != nil {
		t.Fatal(err)
	}
	if exists(mem, s.Dir()) {
		t.Error("staging folder still there after Discard")
	}
	if err := s.Discard(); err != nil {
		t.Errorf("second Discard: %v", err)
	}
	mem.Crash()
	if exists(mem, s.Dir()) {
		t.Error("the Discard was not durable")
	}
}

// TestMarkerOnTheOS runs the marker's life on the real file system.
func TestMarkerOnTheOS(t *testing.T) {
	roots := storeroot.New(fsys.OS{}, server, nil)
	root := filepath.Join(t.TempDir(), "a", "root")
	if ok, err := roots.HasMarker(root); ok || err != nil {
		t.Errorf("missing root: %v %v", ok, err)
	}
	if _, err := roots.ReadMarker(root); !errors.Is(err, storeroot.ErrNoMarker) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadMarker of a missing root: %v, want ErrNoMarker and fs.ErrNotExist", err)
	}
	if err := roots.Prepare(root); err != nil {
		t.Fatal(err)
	}
	if ok, err := roots.HasMarker(root); !ok || err != nil {
		t.Errorf("after Prepare: %v %v", ok, err)
	}
	if m, err := roots.ReadMarker(root); err != nil || m.Server != server || !m.MadeRoot {
		t.Errorf("ReadMarker = %+v, %v", m, err)
	}
	marker := filepath.Join(root, storeroot.MarkerName)
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(marker, 0o755); err != nil {
		t.Fatal(err)
	}
	if ok, err := roots.HasMarker(root); ok || err == nil {
		t.Errorf("a folder counts as a marker: %v, %v", ok, err)
	}
}
