//go:build !windows

// Unix paths over the in-memory fakes: not run on Windows, where the
// *_windows_test.go files test the same behaviour on real drives.

package relocate_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/wharf"
)

func TestSameVolumeRename(t *testing.T) {
	w := newWorld(t)
	for i := range 3 {
		w.add(i, defLoc, 3)
	}
	target := "/vol/a/new/store"
	res := w.run(w.engine(), req(target))
	wantStatus(t, res, wharf.RelocationSuccess)
	if res.Moved != 3 || res.BytesCopied != 0 || res.Plan.ByRename != 3 || res.Plan.ByCopy != 0 {
		t.Errorf("moved %d, copied %d bytes, plan %d by rename %d by copy; want 3 renames", res.Moved, res.BytesCopied, res.Plan.ByRename, res.Plan.ByCopy)
	}
	w.check(target)
	if m, err := w.mem.ReadFile(filepath.Join(target, storeroot.MarkerName)); err != nil || len(m) == 0 {
		t.Errorf("no store marker at the target: %v", err)
	}
}

func TestCrossVolumeCopy(t *testing.T) {
	w := newWorld(t)
	for i := range 5 {
		w.add(i, defLoc, i+1)
	}
	target := "/vol/b/store"
	var results []relocate.PackageResult
	var last relocate.Progress
	e := w.engine(func(o *relocate.Options) {
		o.OnPackage = func(r relocate.PackageResult) { results = append(results, r) }
		o.OnProgress = func(p relocate.Progress) { last = p }
	})
	res := w.run(e, req(target))
	wantStatus(t, res, wharf.RelocationSuccess)
	if res.Moved != 5 || res.Plan.ByCopy != 5 || res.BytesCopied != res.Plan.CopyBytes || res.BytesCopied == 0 {
		t.Errorf("moved %d, copied %d of %d bytes", res.Moved, res.BytesCopied, res.Plan.CopyBytes)
	}
	if len(results) != 5 || results[0].Method != "copy" || results[0].Outcome != relocate.Moved {
		t.Errorf("package results: %+v", results)
	}
	if last.PackagesDone != 5 || last.PackagesTotal != 5 || last.BytesDone != last.BytesTotal {
		t.Errorf("last progress %+v", last)
	}
	w.check(target)
}

func TestConsolidation(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 2)
	w.add(2, rotLoc, 2)
	w.add(3, rotLoc, 1)
	target := "/vol/b/store"
	res := w.run(w.engine(), req(target))
	wantStatus(t, res, wharf.RelocationSuccess|wharf.RelocationConsolidated)
	if res.Plan.Rotated != 2 {
		t.Errorf("plan counts %d rotated, want 2", res.Plan.Rotated)
	}
	w.check(target)

	// Consolidating into a rotated root: those there stay, the rest come.
	w2 := newWorld(t)
	w2.add(1, defLoc, 2)
	w2.add(2, rotLoc, 2)
	res = w2.run(w2.engine(), req(rotLoc))
	wantStatus(t, res, wharf.RelocationSuccess)
	if res.Plan.AlreadyThere != 1 || res.Moved != 1 {
		t.Errorf("already there %d, moved %d; want 1, 1", res.Plan.AlreadyThere, res.Moved)
	}
	w2.check(rotLoc)
}

func TestNothingToMove(t *testing.T) {
	w := newWorld(t)
	res := w.run(w.engine(), req("/vol/b/store"))
	wantStatus(t, res, wharf.RelocationSuccess)
	w.check("/vol/b/store")
	res = w.run(w.engine(), relocate.Request{Target: "/vol/b/store", Manual: true, Retry: true})
	wantStatus(t, res, wharf.RelocationSuccess|wharf.RelocationManual)
}

func TestCustomPackagesStay(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 2)
	custom := w.add(2, "/vol/c", 2)
	custom.Custom = true
	w.index.Add(custom, w.index.FileList(custom.ID))
	res := w.run(w.engine(), req("/vol/b/store"))
	wantStatus(t, res, wharf.RelocationSuccess)
	if p, _ := w.index.Get(custom.ID); p.Folder != custom.Folder || p.Link != "" {
		t.Errorf("custom package moved to %+v", p.Location)
	}
	if res.Plan.Custom != 1 {
		t.Errorf("plan counts %d custom", res.Plan.Custom)
	}
}

func TestLeftoversAfterSwitch(t *testing.T) {
	w := newWorld(t)
	p := w.add(1, defLoc, 3)
	trash := filepath.Join(defLoc, storeroot.TrashDir, string(p.ID))
	w.ffs.Fail(faultfs.Rule{Op: faultfs.OpRename, Path: trash, Err: syscall.EIO})
	target := "/vol/b/store"
	res := w.run(w.engine(), req(target))
	wantStatus(t, res, wharf.RelocationSuccess)
	if res.Moved != 1 {
		t.Fatalf("moved %d", res.Moved)
	}
	got, _ := w.index.Get(p.ID)
	if got.Folder != filepath.Join(target, string(p.ID)) {
		t.Fatalf("index says %s", got.Folder)
	}
	open := w.journal.Open()
	if len(open) != 1 || open[0].Kind != relocate.KindLeftover || open[0].Path != p.Folder || open[0].Trash != trash {
		t.Fatalf("journal holds %+v, want the old folder as a leftover", open)
	}
	// Still failing: Recover keeps it journaled.
	if err := w.engine().Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.journal.Open()) != 1 {
		t.Fatal("a leftover that cannot be removed was forgotten")
	}
	w.ffs.Reset()
	if err := w.engine().Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.check(target)
}

func TestRunBusy(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1)
	var e *relocate.Engine
	var inner error
	e = w.engine(func(o *relocate.Options) {
		o.OnPackage = func(relocate.PackageResult) { _, inner = e.Run(context.Background(), req("/vol/b/x")) }
	})
	w.run(e, req("/vol/b/store"))
	if inner == nil {
		t.Fatal("a second Run while one runs was accepted")
	}
	if err := e.Recover(context.Background()); err != nil {
		t.Fatalf("Recover after the run: %v", err)
	}
}

func TestJournalFailureStopsTheAttempt(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1)
	w.add(2, defLoc, 1)
	boom := errors.New("database is locked")
	w.journal.Fail = func(op string) error {
		if op == "advance" {
			return boom
		}
		return nil
	}
	_, err := w.engine().Run(context.Background(), req("/vol/b/store"))
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the journal's error", err)
	}
	w.journal.Fail = nil
	res := w.run(w.engine(), req("/vol/b/store"))
	wantStatus(t, res, wharf.RelocationSuccess)
	w.check("/vol/b/store")
}

// TestParallel moves many packages four at a time (run with -race).
func TestParallel(t *testing.T) {
	w := newWorld(t)
	for i := range 24 {
		root := defLoc
		switch i % 3 {
		case 1:
			root = rotLoc
		case 2:
			root = "/vol/b/Package Delivery"
		}
		if i == 2 {
			w.storeOf(root)
		}
		w.add(i, root, 1+i%4)
	}
	bad := w.add(99, defLoc, 2)
	if err := w.mem.SetImmutable(filepath.Join(bad.Folder, "f0.bin"), true); err != nil {
		t.Fatal(err)
	}
	e := w.engine(func(o *relocate.Options) { o.Parallel = 4; o.PageSize = 5 })
	res := w.run(e, req("/vol/b/store"))
	wantStatus(t, res, wharf.RelocationSomeNotMoved|wharf.RelocationConsolidated)
	if res.Moved != 24 || res.Linked != 1 || res.Plan.ByRename != 8 || res.Plan.ByCopy != 17 {
		t.Errorf("moved %d linked %d; plan %d by rename, %d by copy", res.Moved, res.Linked, res.Plan.ByRename, res.Plan.ByCopy)
	}
	if p := e.Progress(); p.Running || p.PackagesDone != 25 || p.BytesDone != res.BytesCopied {
		t.Errorf("progress %+v", p)
	}
	w.check("/vol/b/store")
}

// TestCancelMidCopy: a copy under way when the attempt is canceled is
// abandoned and discarded; the package stays where it was.
func TestCancelMidCopy(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 2)
	p := w.add(2, defLoc, 4)
	w.add(3, defLoc, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.ffs.Trace(func(_ int, op faultfs.Op, path string) {
		if op == faultfs.OpWrite && strings.Contains(path, string(p.ID)+"/sub") {
			cancel()
		}
	})
	res, err := w.engine().Run(ctx, req("/vol/b/store"))
	w.ffs.Trace(nil)
	if !errors.Is(err, context.Canceled) || !res.Canceled || res.Moved != 1 || res.Pending != 2 {
		t.Fatalf("Run = %v; canceled %v, moved %d, pending %d", err, res.Canceled, res.Moved, res.Pending)
	}
	if got, _ := w.index.Get(p.ID); got.Folder != p.Folder || got.Link != "" {
		t.Fatalf("the canceled package is at %+v", got.Location)
	}
	if len(w.journal.Open()) != 0 {
		t.Fatalf("journal: %+v", w.journal.Open())
	}
	if err := relocatetest.VerifyPackage(w.mem, p.Folder, w.index.FileList(p.ID)); err != nil {
		t.Fatal(err)
	}
	if got := relocatetest.Find(w.mem, "/vol/b", string(p.ID)); len(got) != 0 {
		t.Fatalf("the abandoned copy is still at %q", got)
	}
	res = w.run(w.engine(), req("/vol/b/store"))
	wantStatus(t, res, wharf.RelocationSuccess)
	w.check("/vol/b/store")
}

func TestThrottle(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 4)
	w.add(2, defLoc, 3)
	lim := rate.NewLimiter(rate.Limit(10<<20), 100) // a burst smaller than a read
	res := w.run(w.engine(func(o *relocate.Options) { o.Limiter = lim; o.EstimateRate = 1 << 40 }), req("/vol/b/store"))
	wantStatus(t, res, wharf.RelocationSuccess)
	if want := float64(res.Plan.CopyBytes) / (10 << 20); res.Plan.EstimateSeconds != want {
		t.Errorf("estimate %v s, want %v s at the limiter's rate", res.Plan.EstimateSeconds, want)
	}
	w.check("/vol/b/store")
}

func TestProgressETA(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := relocate.Progress{Started: start, BytesTotal: 400, BytesDone: 100, PackagesTotal: 4, PackagesDone: 3}
	if got := p.ETA(start.Add(time.Minute)); got != 3*time.Minute {
		t.Errorf("ETA by bytes = %v, want 3m", got)
	}
	p.BytesTotal, p.BytesDone = 0, 0
	if got := p.ETA(start.Add(3 * time.Minute)); got != time.Minute {
		t.Errorf("ETA by packages = %v, want 1m", got)
	}
	if got := (relocate.Progress{Started: start}).ETA(start.Add(time.Hour)); got != 0 {
		t.Errorf("ETA with nothing done = %v", got)
	}
}

// TestRecoverStagedAfterTidy: a staged entry whose package was placed and
// whose temporary folder is gone is still finished.
func TestRecoverStagedAfterTidy(t *testing.T) {
	w := newWorld(t)
	p := w.add(1, defLoc, 2)
	dest := "/vol/b/store/" + string(p.ID)
	if err := w.mem.MkdirAll("/vol/b/store"); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range w.index.FileList(p.ID) {
		b, _ := w.mem.ReadFile(filepath.Join(p.Folder, f.Path))
		files[f.Path] = b
	}
	if _, err := relocatetest.WritePackage(w.mem, dest, files); err != nil {
		t.Fatal(err)
	}
	ent := relocate.Entry{Key: string(p.ID), Kind: relocate.KindMove, Package: p.ID, Step: relocate.StepStaged,
		Target: "/vol/b/store", Source: p.Folder, Dest: dest, Temp: "/vol/b/store/" + storeroot.RelocateDir + "/" + string(p.ID),
		Trash: defLoc + "/" + storeroot.TrashDir + "/" + string(p.ID)}
	if err := w.journal.Begin(context.Background(), ent); err != nil {
		t.Fatal(err)
	}
	if err := w.engine().Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.check("/vol/b/store")
}
