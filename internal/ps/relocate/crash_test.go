//go:build !windows

// Unix paths over the in-memory fakes: not run on Windows, where the
// *_windows_test.go files test the same behaviour on real drives.

package relocate_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/wharf"
)

// crashScenario builds a store and the request of one relocation attempt.
type crashScenario struct {
	name   string
	build  func(w *world) relocate.Request
	status wharf.RelocationStatus // of the attempt that runs to the end
	// faults, when set, are rules the file system keeps throughout (also
	// after the crash), such as an OS without exchange.
	faults func(*faultfs.FS)
}

func (sc crashScenario) applyFaults(f *faultfs.FS) {
	if sc.faults != nil {
		sc.faults(f)
	}
}

const crashTarget = "/vol/b/store"

// link makes p (indexed) behind a link at linkPath, as an earlier attempt
// that linked it would have left it.
func (w *world) link(p relocate.Package, linkPath string) {
	w.t.Helper()
	if err := w.mem.MkdirAll(filepath.Dir(linkPath)); err != nil {
		w.t.Fatal(err)
	}
	if err := w.mem.Symlink(p.Folder, linkPath); err != nil {
		w.t.Fatal(err)
	}
	if err := w.mem.SyncDir(filepath.Dir(linkPath)); err != nil {
		w.t.Fatal(err)
	}
	p.Link = linkPath
	w.index.Add(p, w.index.FileList(p.ID))
}

// storeOf marks root as a store of the test server.
func (w *world) storeOf(root string) {
	w.t.Helper()
	if err := w.mem.WriteFile(filepath.Join(root, storeroot.MarkerName), []byte(`{"server":"`+server+`"}`)); err != nil {
		w.t.Fatal(err)
	}
}

// crashStore is 8 packages over 3 volumes: three in the default location
// on /vol/a (one behind a link at the target, one behind a link at an
// older target), two rotated onto /vol/c (one with an immutable file, so
// it cannot move), two on /vol/b with the target (one moves by rename, one
// is behind a link at the target and moves by rename and exchange).
func crashStore(w *world) {
	bLoc := "/vol/b/Package Delivery"
	w.storeOf(bLoc)
	w.storeOf(crashTarget)
	w.storeOf("/vol/c/old")
	w.add(1, defLoc, 3)
	w.add(2, defLoc, 2)
	p3 := w.add(3, defLoc, 2)
	w.link(p3, filepath.Join(crashTarget, string(p3.ID)))
	w.add(4, rotLoc, 3)
	p5 := w.add(5, rotLoc, 2)
	if err := w.mem.SetImmutable(filepath.Join(p5.Folder, "f0.bin"), true); err != nil {
		w.t.Fatal(err)
	}
	w.add(6, bLoc, 2)
	p7 := w.add(7, bLoc, 1)
	w.link(p7, filepath.Join(crashTarget, string(p7.ID)))
	p8 := w.add(8, defLoc, 2)
	w.link(p8, filepath.Join("/vol/c/old", string(p8.ID)))
}

var crashScenarios = []crashScenario{
	{"relocate", func(w *world) relocate.Request {
		crashStore(w)
		return req(crashTarget)
	}, wharf.RelocationSomeNotMoved | wharf.RelocationConsolidated, nil},
	{"relocate without exchange", func(w *world) relocate.Request {
		crashStore(w)
		return req(crashTarget)
	}, wharf.RelocationSomeNotMoved | wharf.RelocationConsolidated, noExchange},
	{"relocate syncing file by file", func(w *world) relocate.Request {
		crashStore(w)
		return req(crashTarget)
	}, wharf.RelocationSomeNotMoved | wharf.RelocationConsolidated, noVolumeSync},
	{"retry", retryScenario, wharf.RelocationSuccess, nil},
	{"whole root on one volume", func(w *world) relocate.Request {
		wholeRootStore(w)
		return req(wholeTarget)
	}, wharf.RelocationSuccess, nil},
	{"whole root into the empty store made for it", func(w *world) relocate.Request {
		wholeRootStore(w)
		w.storeOf(wholeTarget)
		return req(wholeTarget)
	}, wharf.RelocationSuccess, nil},
}

// wholeTarget is on /vol/a, with the default location.
const wholeTarget = "/vol/a/store"

// wholeRootStore is 4 packages, all in the default location on /vol/a: a
// relocation to another folder of /vol/a moves the root in one rename.
func wholeRootStore(w *world) {
	for n := 1; n <= 4; n++ {
		w.add(n, defLoc, n)
	}
}

// noVolumeSync makes the file system one that cannot sync a whole volume
// (Windows), so copies sync every file and folder.
func noVolumeSync(f *faultfs.FS) {
	f.Fail(faultfs.Rule{Op: faultfs.OpSyncFS, Err: errors.ErrUnsupported})
}

// noExchange makes the file system one without an atomic exchange, as on
// Windows.
func noExchange(f *faultfs.FS) {
	f.Fail(faultfs.Rule{Op: faultfs.OpExchange, Err: errors.ErrUnsupported})
}

func retryScenario(w *world) relocate.Request {
	crashStore(w)
	// An earlier attempt left package 5 behind a link; its attribute is
	// gone now and a retry moves it.
	if _, err := w.engine().Run(context.Background(), req(crashTarget)); err != nil {
		w.t.Fatal(err)
	}
	p5, _ := w.index.Get(relocatetest.ID(5))
	if err := w.mem.SetImmutable(filepath.Join(p5.Folder, "f0.bin"), false); err != nil {
		w.t.Fatal(err)
	}
	r := req(crashTarget)
	r.From, r.Retry = crashTarget, true
	return r
}

// TestCrashMatrix is STYLE §7: count the file-system operations N of a
// clean attempt, then for every k in 0..N crash at operation k, drop what
// was not durable, and check that Recover and a new attempt end with every
// package whole at exactly one place, no temporary leftovers, the journal
// closed, and that a second Recover changes nothing.
func TestCrashMatrix(t *testing.T) {
	for _, sc := range crashScenarios {
		t.Run(sc.name, func(t *testing.T) {
			start := time.Now()
			clean := newWorld(t)
			r := sc.build(clean)
			clean.ffs.Reset()
			sc.applyFaults(clean.ffs)
			clean.ffs.Trace(clean.servingCheck(t, "clean attempt"))
			res := clean.run(clean.engine(), r)
			clean.ffs.Trace(nil)
			wantStatus(t, res, sc.status)
			n := clean.ffs.Ops()
			clean.check(r.Target)
			want := clean.snapshot()

			for k := 0; k <= n; k++ {
				crashAt(t, sc, k, n, want)
				if t.Failed() {
					t.Fatalf("crash at operation %d of %d failed (run with -v for the trace)", k, n)
				}
			}
			t.Logf("%s: %d operations in a clean attempt; %d crash points in %v", sc.name, n, n+1, time.Since(start).Round(time.Millisecond))
		})
	}
}

func crashAt(t *testing.T, sc crashScenario, k, n int, want string) {
	t.Helper()
	w := newWorld(t)
	r := sc.build(w)
	crashed := func(string) error {
		if w.ffs.Crashed() {
			return faultfs.ErrCrashed
		}
		return nil
	}
	w.journal.Fail, w.index.Fail = crashed, crashed
	var trace []string
	w.ffs.Trace(func(i int, op faultfs.Op, path string) {
		if i <= k+2 {
			trace = append(trace, fmt.Sprintf("%d %s %s", i, op, path))
		}
	})
	sc.applyFaults(w.ffs)
	w.ffs.CrashAt(k)
	// Run may notice the crash (a journal call fails) or not (a package
	// whose file-system calls fail is just not moved); either way nothing
	// after operation k reaches the disk or the state DB.
	_, err := w.engine().Run(context.Background(), r)
	if k == n && err != nil {
		t.Errorf("crash at %d (after the end): Run = %v", k, err)
	}
	// The process dies; what was not durable is lost.
	w.ffs.Trace(nil)
	w.ffs.Reset()
	sc.applyFaults(w.ffs)
	w.journal.Fail, w.index.Fail = nil, nil
	w.mem.Crash()

	// Restart: Recover first, then everything served must be whole.
	if err := w.engine().Recover(context.Background()); err != nil {
		t.Fatalf("crash at %d: Recover: %v", k, err)
	}
	for _, p := range w.index.All() {
		if err := relocatetest.VerifyPackage(w.mem, p.Folder, w.index.FileList(p.ID)); err != nil {
			t.Errorf("crash at %d: after Recover package %s: %v", k, p.ID, err)
		}
		if p.Link != "" {
			if got, err := w.mem.Readlink(p.Link); err != nil || got != p.Folder {
				t.Errorf("crash at %d: after Recover package %s: link %s -> %q, %v", k, p.ID, p.Link, got, err)
			}
		}
	}
	for _, e := range w.journal.Open() {
		if e.Kind != relocate.KindLeftover {
			t.Errorf("crash at %d: Recover left %+v open", k, e)
		}
	}

	// The attempt again, to its end, serving all along (checked at every
	// operation after one crash point in sixteen: the clean attempt is
	// checked at each of its operations, and the check is what makes
	// this matrix slow).
	if k%16 == 0 {
		w.ffs.Trace(w.servingCheck(t, fmt.Sprintf("attempt after a crash at %d", k)))
	}
	res, err := w.engine().Run(context.Background(), r)
	w.ffs.Trace(nil)
	if err != nil {
		t.Fatalf("crash at %d: Run after Recover: %v", k, err)
	}
	if res.Status&^wharf.RelocationConsolidated != sc.status&^wharf.RelocationConsolidated {
		t.Errorf("crash at %d: status %s, want %s", k, res.Status, sc.status)
	}
	w.check(r.Target)
	got := w.snapshot()
	if err := w.engine().Recover(context.Background()); err != nil {
		t.Fatalf("crash at %d: second Recover: %v", k, err)
	}
	if again := w.snapshot(); again != got {
		t.Errorf("crash at %d: a second Recover changed the store:\n%s\n---\n%s", k, got, again)
	}
	if got != want {
		t.Errorf("crash at %d: the store differs from a clean attempt's:\n%s\n--- want ---\n%s", k, got, want)
	}
	if t.Failed() {
		for _, line := range trace {
			t.Log(line)
		}
	}
}

// servingCheck returns a faultfs trace function that checks, before every
// file-system operation, what serving relies on while a relocation runs:
// every package is whole in the folder the index names or in one of the
// folders its open move passes through (relocate.Entry.ServingFolders), so
// a request finds it however long the time between a rename and its
// switch. Links are not followed: a real folder must hold it.
func (w *world) servingCheck(t *testing.T, when string) func(int, faultfs.Op, string) {
	failures := 0
	return func(n int, op faultfs.Op, path string) {
		moving := map[wharf.PackageID]relocate.Entry{}
		var roots []relocate.Entry
		for _, e := range w.journal.Open() {
			switch e.Kind {
			case relocate.KindMove:
				moving[e.Package] = e
			case relocate.KindRoot:
				roots = append(roots, e)
			}
		}
		for _, p := range w.index.All() {
			files := w.index.FileList(p.ID)
			dirs := append([]string{p.Folder}, moving[p.ID].ServingFolders()...)
			for _, r := range roots {
				dirs = append(dirs, r.RootServingFolders(p.Folder)...)
			}
			var errs []error
			found := false
			for _, d := range dirs {
				if fi, err := w.mem.Lstat(d); err != nil || !fi.IsDir() {
					errs = append(errs, fmt.Errorf("%s: not a folder (%v)", d, err))
					continue
				}
				if err := relocatetest.VerifyPackage(w.mem, d, files); err != nil {
					errs = append(errs, err)
					continue
				}
				found = true
				break
			}
			if !found {
				if failures++; failures <= 3 {
					t.Errorf("%s, before operation %d (%s %s): package %s cannot be served: %v", when, n, op, path, p.ID, errors.Join(errs...))
				}
			}
		}
	}
}
