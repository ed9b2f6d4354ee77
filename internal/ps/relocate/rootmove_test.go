//go:build !windows

// Unix paths over the in-memory fakes.

package relocate_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/wharf"
)

// renames counts the renames of folders an attempt makes (a whole root
// moved is one).
func renames(w *world) *int {
	n := new(int)
	w.ffs.Trace(func(_ int, op faultfs.Op, path string) {
		if op == faultfs.OpRename && !strings.Contains(path, storeroot.MarkerName) {
			*n++
		}
	})
	return n
}

// TestRootMovesWhole: a store all in the default location moves to another
// folder of its volume with one rename, whatever the target was before:
// missing, an empty folder, or the empty store made for it.
func TestRootMovesWhole(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(w *world)
	}{
		{"target missing", func(w *world) {}},
		{"target an empty folder", func(w *world) {
			if err := w.mem.MkdirAll(wholeTarget); err != nil {
				t.Fatal(err)
			}
		}},
		{"target the empty store made for it", func(w *world) {
			w.storeOf(wholeTarget)
			if err := w.mem.MkdirAll(filepath.Join(wholeTarget, storeroot.RelocateDir)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			wholeRootStore(w)
			tc.setup(w)
			n := renames(w)
			res := w.run(w.engine(), req(wholeTarget))
			wantStatus(t, res, wharf.RelocationSuccess)
			if res.Moved != 4 || *n != 1 {
				t.Errorf("moved %d packages with %d renames, want 4 with 1", res.Moved, *n)
			}
			w.check(wholeTarget)
			if _, err := w.mem.Lstat(defLoc); err == nil {
				t.Errorf("the old root %s is still there", defLoc)
			}
			m, err := storeroot.New(w.mem, server, nil).ReadMarker(wholeTarget)
			if err != nil || m.Server != server {
				t.Errorf("marker at the target: %+v, %v", m, err)
			}
		})
	}
}

// TestRootMoveFallsBack: whenever moving the root whole could move or
// touch what is not the attempt's, or something writes into it, the store
// moves package by package — and ends the same.
func TestRootMoveFallsBack(t *testing.T) {
	other := relocatetest.ID(99)
	for _, tc := range []struct {
		name   string
		setup  func(w *world, roots *storeroot.Roots)
		status wharf.RelocationStatus
		moved  int
	}{
		{"a rotated package on another volume", func(w *world, _ *storeroot.Roots) {
			w.add(5, rotLoc, 1)
		}, wharf.RelocationSuccess | wharf.RelocationConsolidated, 5},
		{"a download under way in the root", func(w *world, _ *storeroot.Roots) {
			if err := w.mem.MkdirAll(filepath.Join(defLoc, storeroot.DownloadDir, string(other))); err != nil {
				t.Fatal(err)
			}
		}, wharf.RelocationSuccess, 4},
		{"the root pinned by a download", func(w *world, roots *storeroot.Roots) {
			t.Cleanup(roots.Acquire(defLoc))
		}, wharf.RelocationSuccess, 4},
		{"somebody else's file in the root", func(w *world, _ *storeroot.Roots) {
			if err := w.mem.WriteFile(filepath.Join(defLoc, "README.txt"), []byte("mine")); err != nil {
				t.Fatal(err)
			}
		}, wharf.RelocationSuccess, 4},
		{"a package folder the index does not know", func(w *world, _ *storeroot.Roots) {
			if err := w.mem.MkdirAll(filepath.Join(defLoc, string(other))); err != nil {
				t.Fatal(err)
			}
		}, wharf.RelocationSuccess, 4},
		{"a package behind a link", func(w *world, _ *storeroot.Roots) {
			p, _ := w.index.Get(relocatetest.ID(2))
			w.link(p, filepath.Join("/vol/a/older", string(p.ID)))
		}, wharf.RelocationSuccess, 4},
		{"a package at the target already", func(w *world, _ *storeroot.Roots) {
			w.storeOf(wholeTarget)
			w.add(6, wholeTarget, 1)
		}, wharf.RelocationSuccess, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			wholeRootStore(w)
			roots := storeroot.New(w.ffs, server, w.clock)
			tc.setup(w, roots)
			n := renames(w)
			res := w.run(w.engine(func(o *relocate.Options) { o.Roots = roots }), req(wholeTarget))
			wantStatus(t, res, tc.status)
			if res.Moved != tc.moved || *n < 4 {
				t.Errorf("moved %d packages with %d renames, want %d package by package", res.Moved, *n, tc.moved)
			}
			w.check(wholeTarget)
			if got, err := w.mem.ReadFile(filepath.Join(defLoc, "README.txt")); tc.name == "somebody else's file in the root" && (err != nil || string(got) != "mine") {
				t.Errorf("somebody else's file: %q, %v", got, err)
			}
		})
	}
}
