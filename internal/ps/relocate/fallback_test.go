//go:build !windows

// Unix paths over the in-memory fakes: not run on Windows, where the
// *_windows_test.go files test the same behaviour on real drives.

package relocate_test

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/wharf"
)

// TestLinkFallback makes one package of three unmovable in each way SPEC
// §6.2 names and checks it stays whole at its old place behind a link.
func TestLinkFallback(t *testing.T) {
	cases := []struct {
		name   string
		target string
		cause  string
		setup  func(w *world, p relocate.Package)
	}{
		{"permission denied reading", "/vol/b/store", relocate.CausePermission, func(w *world, p relocate.Package) {
			w.ffs.Fail(faultfs.Rule{Op: faultfs.OpOpen, Path: p.Folder + "/", Err: syscall.EACCES})
		}},
		{"I/O error", "/vol/b/store", relocate.CauseIO, func(w *world, p relocate.Package) {
			w.ffs.Fail(faultfs.Rule{Op: faultfs.OpRead, Path: p.Folder + "/", Nth: 2, Err: syscall.EIO})
		}},
		{"space gone", "/vol/b/store", relocate.CauseNoSpace, func(w *world, p relocate.Package) {
			w.ffs.Fail(faultfs.Rule{Op: faultfs.OpWrite, Path: "/vol/b/store/" + storeroot.RelocateDir + "/" + string(p.ID) + "/", Err: syscall.ENOSPC, Short: true})
		}},
		{"immutable file", "/vol/b/store", relocate.CauseNotRemovable, func(w *world, p relocate.Package) {
			if err := w.mem.SetImmutable(filepath.Join(p.Folder, "f0.bin"), true); err != nil {
				t.Fatal(err)
			}
		}},
		{"held open (Windows)", "/vol/b/store", relocate.CauseNotRemovable, func(w *world, p relocate.Package) {
			w.ffs.Fail(faultfs.Rule{Op: faultfs.OpCanRemove, Path: p.Folder, Err: syscall.EBUSY})
		}},
		{"busy on rename", "/vol/a/new", relocate.CauseBusy, func(w *world, p relocate.Package) {
			w.ffs.Fail(faultfs.Rule{Op: faultfs.OpRename, Path: p.Folder, Err: syscall.EBUSY})
		}},
		{"rename not permitted", "/vol/a/new", relocate.CausePermission, func(w *world, p relocate.Package) {
			w.ffs.Fail(faultfs.Rule{Op: faultfs.OpRename, Path: p.Folder, Err: syscall.EPERM})
		}},
		{"immutable folder", "/vol/a/new", relocate.CausePermission, func(w *world, p relocate.Package) {
			if err := w.mem.SetImmutable(p.Folder, true); err != nil {
				t.Fatal(err)
			}
		}},
		{"damaged source", "/vol/b/store", relocate.CauseDamaged, func(w *world, p relocate.Package) {
			files := w.index.FileList(p.ID)
			files[0].SHA256 = wharf.Digest("0000000000000000000000000000000000000000000000000000000000000000")
			w.index.Add(p, files)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.add(1, defLoc, 3)
			bad := w.add(2, defLoc, 3)
			w.add(3, defLoc, 3)
			manifest := w.index.FileList(bad.ID)
			if filepath.Dir(tc.target) == volA {
				// A download under way in the old root: the store moves
				// package by package, whose fallback this tests (a root
				// that moves whole takes every package with it).
				if err := w.mem.MkdirAll(filepath.Join(defLoc, storeroot.DownloadDir, string(relocatetest.ID(99)))); err != nil {
					t.Fatal(err)
				}
			}
			tc.setup(w, bad)
			res := w.run(w.engine(), req(tc.target))
			wantStatus(t, res, wharf.RelocationSomeNotMoved)
			if res.Warning != "Some of the files have not been moved to the new location." {
				t.Errorf("warning %q", res.Warning)
			}
			if res.Moved != 2 || res.Linked != 1 || len(res.NotMoved) != 1 {
				t.Fatalf("moved %d, linked %d, not moved %+v", res.Moved, res.Linked, res.NotMoved)
			}
			r := res.NotMoved[0]
			if r.Package != bad.ID || r.Outcome != relocate.Linked || r.Cause != tc.cause || r.Reason == "" {
				t.Errorf("result %+v, want linked with cause %s", r, tc.cause)
			}
			link := filepath.Join(tc.target, string(bad.ID))
			if got, _ := w.index.Get(bad.ID); got.Folder != bad.Folder || got.Link != link {
				t.Errorf("index says %+v, want folder %s behind link %s", got.Location, bad.Folder, link)
			}
			w.ffs.Reset()
			got, _ := w.index.Get(bad.ID)
			w.index.Add(got, manifest)
			w.check(tc.target)
		})
	}
}

// TestRetryReplacesLinks: after a warning, a retry touches only linked
// packages and replaces each link by the real folder.
func TestRetryReplacesLinks(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		noExchange   bool
	}{
		{"across volumes", "/vol/b/store", false},
		{"same volume", "/vol/a/new", false},
		{"across volumes without exchange", "/vol/b/store", true},
		{"same volume without exchange", "/vol/a/new", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.add(1, defLoc, 2)
			bad := w.add(2, defLoc, 3)
			rotated := w.add(3, rotLoc, 2)
			immutable := filepath.Join(bad.Folder, "f0.bin")
			if tc.target == "/vol/a/new" {
				immutable = bad.Folder // a rename moves a folder holding an immutable file
			}
			if err := w.mem.SetImmutable(immutable, true); err != nil {
				t.Fatal(err)
			}
			res := w.run(w.engine(), req(tc.target))
			wantStatus(t, res, wharf.RelocationSomeNotMoved|wharf.RelocationConsolidated)
			w.check(tc.target)

			// A package rotated after the relocation stays put on retry.
			late := w.add(4, rotLoc, 1)
			before := w.index.SetLocations()

			if err := w.mem.SetImmutable(immutable, false); err != nil {
				t.Fatal(err)
			}
			if tc.noExchange {
				w.ffs.Fail(faultfs.Rule{Op: faultfs.OpExchange, Err: errors.ErrUnsupported})
			}
			retry := req(tc.target)
			retry.From, retry.Retry, retry.Manual = tc.target, true, true
			res = w.run(w.engine(), retry)
			wantStatus(t, res, wharf.RelocationSuccess|wharf.RelocationManual)
			if res.Moved != 1 || res.Plan.Relinks != 1 || res.Plan.Untouched != 1 {
				t.Errorf("retry moved %d (plan: %d relinks, %d untouched); want 1, 1, 1", res.Moved, res.Plan.Relinks, res.Plan.Untouched)
			}
			if got := w.index.SetLocations() - before; got != 1 {
				t.Errorf("retry switched %d packages, want 1", got)
			}
			if got, _ := w.index.Get(late.ID); got.Folder != late.Folder {
				t.Errorf("a retry moved the late rotated package to %s", got.Folder)
			}
			if got, _ := w.index.Get(bad.ID); got.Link != "" || got.Folder != filepath.Join(tc.target, string(bad.ID)) {
				t.Errorf("after retry the package is at %+v", got.Location)
			}
			w.index.Remove(late.ID)
			_ = w.mem.RemoveAll(late.Folder)
			w.ffs.Reset()
			w.check(tc.target)
			_ = rotated
		})
	}
}

// TestCancelThenNewTarget: the policy changes mid-way; the attempt stops
// between packages and a new one takes every package from wherever it is.
func TestCancelThenNewTarget(t *testing.T) {
	w := newWorld(t)
	for i := range 6 {
		root := defLoc
		if i%3 == 2 {
			root = rotLoc
		}
		w.add(i, root, 2)
	}
	bad := w.add(9, defLoc, 2)
	if err := w.mem.SetImmutable(filepath.Join(bad.Folder, "f0.bin"), true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	e := w.engine(func(o *relocate.Options) {
		o.OnPackage = func(relocate.PackageResult) {
			if n++; n == 3 {
				cancel()
			}
		}
	})
	res, err := e.Run(ctx, req("/vol/b/first"))
	if !errors.Is(err, context.Canceled) || !res.Canceled {
		t.Fatalf("canceled Run = %v, canceled %v", err, res.Canceled)
	}
	if res.Moved+res.Linked != 3 || res.Pending != 4 {
		t.Errorf("moved %d linked %d pending %d; want 3 done, 4 pending", res.Moved, res.Linked, res.Pending)
	}
	if res.Status.Has(wharf.RelocationSuccess) || res.Status.Has(wharf.RelocationSomeNotMoved) {
		t.Errorf("a canceled attempt has status %s", res.Status)
	}
	if open := w.journal.Open(); len(open) != 0 {
		t.Fatalf("journal holds %+v after a cancel", open)
	}
	// The new target, on yet another volume.
	target := "/vol/c/second"
	next := req(target)
	next.From = "/vol/b/first"
	res = w.run(w.engine(), next)
	wantStatus(t, res, wharf.RelocationSomeNotMoved|wharf.RelocationConsolidated)
	if res.Moved != 6 || res.Linked != 1 {
		t.Errorf("moved %d, linked %d", res.Moved, res.Linked)
	}
	w.check(target)
	if left := w.snapshotUnder("/vol/b/first"); left != "/vol/b/first/\n/vol/b/first/.wharf-store\n/vol/b/first/.wharf-trash/\n" {
		t.Errorf("the first target still holds:\n%s", left)
	}
}

// snapshotUnder lists what is below dir (content not shown).
func (w *world) snapshotUnder(dir string) string {
	var out string
	for _, line := range splitLines(w.snapshot()) {
		if len(line) >= len(dir) && line[:len(dir)] == dir {
			if i := indexByte(line, ' '); i > 0 {
				line = line[:i]
			}
			out += line + "\n"
		}
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := indexByte(s, '\n')
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	return out
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// TestPackageGoneMidMove: a package unassigned while it is copied leaves
// nothing behind.
func TestPackageGoneMidMove(t *testing.T) {
	w := newWorld(t)
	p := w.add(1, defLoc, 4)
	calls := 0
	w.index.Fail = func(op string) error {
		if op == "files" {
			if calls++; calls == 2 {
				w.index.Remove(p.ID)
			}
		}
		return nil
	}
	res := w.run(w.engine(), req("/vol/b/store"))
	if res.Failed != 1 || res.NotMoved[0].Cause != relocate.CauseGone {
		t.Fatalf("result %+v", res.NotMoved)
	}
	_ = w.mem.RemoveAll(p.Folder) // the store removes an unassigned package itself
	w.check("/vol/b/store")
}

// TestSpaceGoneOnRealCapacity: the target volume fills up for real.
func TestSpaceGoneOnRealCapacity(t *testing.T) {
	w := newWorld(t)
	if err := w.mem.AddVolume("/vol/d", memfs.Volume{Capacity: 2000}); err != nil {
		t.Fatal(err)
	}
	dev, _ := w.mem.Dev("/vol/d")
	info := diskAt("/vol/d", dev)
	w.facts.Add(info)
	for i := range 4 {
		w.add(i, defLoc, 3)
	}
	res := w.run(w.engine(), req("/vol/d/store"))
	wantStatus(t, res, wharf.RelocationSomeNotMoved)
	if res.Moved == 0 || res.Linked == 0 {
		t.Fatalf("moved %d, linked %d", res.Moved, res.Linked)
	}
	for _, r := range res.NotMoved {
		if r.Cause != relocate.CauseNoSpace {
			t.Errorf("%s: cause %s (%s)", r.Package, r.Cause, r.Reason)
		}
	}
	w.check("/vol/d/store")
}
