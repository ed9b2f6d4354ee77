package location_test

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock/clocktest"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
	"github.com/wharf-project/wharf/internal/ps/location"
	"github.com/wharf-project/wharf/internal/ps/pstest"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume/volumetest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// The world: three volumes in memory; the default location on /vol/a, a
// rotated root on /vol/c; the state DB is the real SQLite store.
const (
	server  = "ps-test"
	defLoc  = "/vol/a/Package Delivery"
	rotLoc  = "/vol/c/Package Delivery"
	targetB = "/vol/b/store"
	targetC = "/vol/c/store"
	mib     = 1 << 20
)

type world struct {
	t      *testing.T
	mem    *memfs.FS
	fs     *gateFS
	facts  *volumetest.Fake
	dbPath string
	st     *store.Store
	ns     *fakeNS
	placer *fakePlacer
	pause  *fakePause
	clock  *clocktest.Manual
	reg    *prometheus.Registry
	files  map[wharf.PackageID][]wharf.File

	ctl    *location.Controller
	cancel context.CancelFunc
	done   chan struct{}
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, mem: memfs.New(), facts: volumetest.New(), ns: &fakeNS{}, placer: &fakePlacer{},
		pause: &fakePause{}, clock: clocktest.NewManual(), files: map[wharf.PackageID][]wharf.File{},
		dbPath: filepath.Join(t.TempDir(), "ps.db")}
	w.fs = &gateFS{FS: w.mem}
	for _, v := range []string{"/vol/a", "/vol/b", "/vol/c"} {
		if err := w.mem.AddVolume(v, memfs.Volume{}); err != nil {
			t.Fatal(err)
		}
		info := volumetest.Disk(v, "ext4", 100<<30, 40<<30)
		info.DevID, _ = w.mem.Dev(v)
		w.facts.Add(info)
	}
	for _, r := range []string{defLoc, rotLoc} {
		if err := w.mem.WriteFile(filepath.Join(r, storeroot.MarkerName), []byte(`{"server":"`+server+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	w.openStore()
	return w
}

func (w *world) openStore() {
	w.t.Helper()
	st, err := store.Open(context.Background(), w.dbPath)
	if err != nil {
		w.t.Fatal(err)
	}
	w.st = st
	w.t.Cleanup(func() { st.Close() })
}

// add writes package n (nfiles files of size bytes each) into root and
// records it ready in the state DB.
func (w *world) add(n int, root string, nfiles, size int) wharf.PackageID {
	w.t.Helper()
	id := relocatetest.ID(n)
	if _, err := w.mem.Lstat(filepath.Join(root, storeroot.MarkerName)); err != nil {
		if err := w.mem.WriteFile(filepath.Join(root, storeroot.MarkerName), []byte(`{"server":"`+server+`"}`)); err != nil {
			w.t.Fatal(err)
		}
	}
	content := map[string][]byte{}
	for i := range nfiles {
		content[fmt.Sprintf("d%d/f%d.bin", i%2, i)] = []byte(strings.Repeat(string(rune('a'+n%26)), size))
	}
	manifest, err := relocatetest.WritePackage(w.mem, filepath.Join(root, string(id)), content)
	if err != nil {
		w.t.Fatal(err)
	}
	w.files[id] = manifest
	p := store.Package{ID: string(id), Name: fmt.Sprintf("p%d", n), Version: "1", Root: root,
		Path: filepath.Join(root, string(id)), State: api.StateDownloading, FileCount: nfiles}
	mt := map[string]time.Time{}
	for _, f := range manifest {
		p.Files = append(p.Files, store.File{File: f})
		p.Size += f.Size
		mt[f.Path] = time.Unix(1, 0)
	}
	ctx := context.Background()
	if err := w.st.Put(ctx, p); err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.MarkReady(ctx, p.ID, mt, time.Unix(1, 0)); err != nil {
		w.t.Fatal(err)
	}
	return id
}

type opts func(*location.Options)

// start makes a controller over the world, recovers and serves it.
func (w *world) start(o ...opts) {
	w.t.Helper()
	w.reg = prometheus.NewRegistry()
	opt := location.Options{
		Server: server, Default: defLoc, FS: w.fs, Facts: w.facts,
		Index: w.st.RelocationIndex(), Journal: w.st.RelocationJournal(), State: w.st,
		NS: w.ns, Placer: w.placer, Downloads: w.pause, Serving: w.pause,
		Reserve: relocate.Reserve{Percent: 5}, MaxAttempts: 3, Interval: 15 * time.Minute,
		Clock: w.clock, Log: pstest.Logger(w.t), Registry: w.reg,
		Engine: func(eo *relocate.Options) {
			eo.Parallel = 2
			eo.KnownFolder = func(p string) (bool, string) {
				return p == "/etc" || strings.HasPrefix(p, "/etc/"), "/etc"
			}
		},
	}
	for _, f := range o {
		f(&opt)
	}
	ctl, err := location.New(opt)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := ctl.Recover(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.ctl, w.cancel, w.done = ctl, cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		if err := ctl.Serve(ctx); err != nil {
			w.t.Errorf("Serve: %v", err)
		}
	}()
	w.t.Cleanup(w.stop)
}

// stop stops the controller (the PS stops).
func (w *world) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.cancel = nil
}

// apply applies a configuration and waits, as a download the same
// configuration starts would, until the placer may place again: the
// controller decided about the location.
func (w *world) apply(loc string, tasks ...api.Task) {
	w.t.Helper()
	w.applyMode(loc, api.RelocationOnline, tasks...)
}

func (w *world) applyMode(loc, mode string, tasks ...api.Task) {
	w.t.Helper()
	w.ctl.Apply(location.Config{Location: loc, Mode: mode, Tasks: tasks})
	w.placer.waitResumed(w.t, location.PauseDeciding)
}

// waitFinals waits until the NS got n events that end attempts.
func (w *world) waitFinals(n int) []api.LocationStatus {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		finals := w.ns.finals()
		if len(finals) >= n {
			return finals
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("got %d final events, want %d: %+v", len(finals), n, finals)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits until the controller is idle and a little longer, then
// returns the final events.
func (w *world) settle() []api.LocationStatus {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for w.ctl.Busy() {
		if time.Now().After(deadline) {
			w.t.Fatal("controller still busy after 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	for w.ctl.Busy() {
		time.Sleep(5 * time.Millisecond)
	}
	return w.ns.finals()
}

// checkAt checks that every package is whole at root (or behind a link
// there for the ids in linked), and nowhere else.
func (w *world) checkAt(root string, linked ...wharf.PackageID) {
	w.t.Helper()
	links, err := w.st.Links(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	for id, manifest := range w.files {
		p, ok := w.st.Get(string(id))
		if !ok {
			w.t.Errorf("package %s not in the index", id)
			continue
		}
		dest := filepath.Join(root, string(id))
		if err := relocatetest.VerifyPackage(w.mem, p.Path, manifest); err != nil {
			w.t.Errorf("package %s at %s: %v", id, p.Path, err)
		}
		if slices.Contains(linked, id) {
			if links[string(id)] != dest || p.Path == dest {
				w.t.Errorf("package %s: at %s link %q, want linked at %s", id, p.Path, links[string(id)], dest)
			}
			continue
		}
		if p.Path != dest || links[string(id)] != "" {
			w.t.Errorf("package %s at %s (link %q), want %s", id, p.Path, links[string(id)], dest)
		}
		for _, other := range []string{defLoc, rotLoc, targetB, targetC} {
			if other == root {
				continue
			}
			if _, err := w.mem.Lstat(filepath.Join(other, string(id))); err == nil {
				w.t.Errorf("package %s also at %s", id, other)
			}
		}
	}
	if open, _ := w.st.RelocationJournal().List(context.Background()); len(open) > 0 {
		w.t.Errorf("journal entries open: %+v", open)
	}
}

func TestPolicyChangeRelocatesAndReports(t *testing.T) {
	w := newWorld(t)
	a := w.add(1, defLoc, 3, 300_000)
	w.add(2, defLoc, 2, 100)
	w.add(3, rotLoc, 2, 2*mib) // rotated onto /vol/c
	w.add(4, "/vol/b/Package Delivery", 1, 10)
	w.start()
	w.apply(api.LocationDefault) // the location in effect: nothing to do
	if got := w.settle(); len(got) != 0 {
		t.Fatalf("same location: %d events, want none", len(got))
	}
	w.apply(targetB)
	ev := w.waitFinals(1)[0]
	w.settle()
	w.checkAt(targetB)
	if got := w.placer.primaries(); !slices.Equal(got, []string{targetB}) {
		t.Errorf("primary locations set: %v, want [%s]", got, targetB)
	}
	want := wharf.RelocationSuccess | wharf.RelocationConsolidated
	if wharf.RelocationStatus(ev.LastStatus) != want || !slices.Equal(ev.LastStatusFlags, want.Names()) {
		t.Errorf("status %v %v, want %v", wharf.RelocationStatus(ev.LastStatus), ev.LastStatusFlags, want)
	}
	// Every field of SPEC §6.7.
	var total int64
	for _, m := range w.files {
		for _, f := range m {
			total += f.Size
		}
	}
	if ev.StoragePath != targetB || ev.VolumeTotalMB != 100<<10 || ev.VolumeFreeMB != 40<<10 ||
		ev.PSUsedMB != (total+mib-1)/mib || ev.VolumeRequiredMB != (total+mib-1)/mib ||
		!ev.LastAttempt.Equal(w.clock.Now()) || ev.AttemptsDone != 0 || ev.MaxAttempts != 3 || ev.Progress != nil {
		t.Errorf("event fields: %+v (total %d bytes)", ev, total)
	}
	if len(ev.Prerequisites) != 6 || len(ev.Packages) != 4 {
		t.Errorf("prerequisites %+v, packages %+v", ev.Prerequisites, ev.Packages)
	}
	for _, p := range ev.Packages {
		if p.State != api.RelocationMoved || p.Path != filepath.Join(targetB, p.PackageID) {
			t.Errorf("package state %+v", p)
		}
	}
	if n := len(w.ns.progress()); n == 0 {
		t.Error("no progress event while the attempt ran")
	}
	st := w.ctl.Status(context.Background())
	if st.StoragePath != targetB || st.Target != targetB || st.Running || st.LastStatus != uint32(want) || st.JournalOpen != 0 {
		t.Errorf("status: %+v", st)
	}
	if got := metricValue(t, w.reg, "wharf_relocation_packages_total", "outcome", "moved"); got != 4 {
		t.Errorf("moved packages metric %v, want 4", got)
	}
	if got := metricValue(t, w.reg, "wharf_relocation_attempts_total", "kind", "policy", "result", "success"); got != 1 {
		t.Errorf("attempts metric %v, want 1", got)
	}
	_ = a

	// The same location again: nothing runs.
	w.apply(targetB)
	if got := w.settle(); len(got) != 1 {
		t.Fatalf("same location again: %d events, want 1", len(got))
	}
	// Back to the default location.
	w.apply(api.LocationDefault)
	w.waitFinals(2)
	w.settle()
	w.checkAt(defLoc)
}

func TestNewTargetMidRunCancelsAndRestarts(t *testing.T) {
	w := newWorld(t)
	for n := 1; n <= 4; n++ {
		w.add(n, defLoc, 2, 1000)
	}
	w.start(func(o *location.Options) {
		o.Engine = func(eo *relocate.Options) { eo.Parallel = 1 }
	})
	// The first copy into /vol/b blocks until released.
	release := w.fs.block(targetB + "/" + storeroot.RelocateDir + "/")
	go w.apply(targetB)
	<-w.fs.blocked
	applied := make(chan struct{})
	go func() { w.apply(targetC); close(applied) }()
	waitFor(t, "the running attempt to be asked to stop", func() bool {
		st := w.ctl.Status(context.Background())
		return st.Location == targetC
	})
	close(release)
	<-applied
	finals := w.waitFinals(2)
	w.settle()
	if s := wharf.RelocationStatus(finals[0].LastStatus); finals[0].StoragePath != targetB || s.Has(wharf.RelocationSuccess) ||
		!strings.Contains(finals[0].Message, "stopped") {
		t.Errorf("first attempt: %+v", finals[0])
	}
	// Its status has no bit that says how it ended: the event says it in
	// a word, so it is not a nameless 0x000 in the history.
	if finals[0].Outcome != api.OutcomeCanceled || finals[0].StoragePathInEffect != filepath.Clean(defLoc) {
		t.Errorf("canceled attempt: outcome %q, in effect %q; want %q, %q", finals[0].Outcome, finals[0].StoragePathInEffect,
			api.OutcomeCanceled, defLoc)
	}
	if s := wharf.RelocationStatus(finals[1].LastStatus); finals[1].StoragePath != targetC || !s.Has(wharf.RelocationSuccess) ||
		finals[1].Outcome != api.OutcomeSuccess || finals[1].StoragePathInEffect != targetC {
		t.Errorf("second attempt: %+v", finals[1])
	}
	w.checkAt(targetC)
	if got := w.placer.primaries(); got[len(got)-1] != targetC {
		t.Errorf("primary locations: %v, want the last %s", got, targetC)
	}
	if st := w.ctl.Status(context.Background()); st.StoragePath != targetC {
		t.Errorf("storage path %s, want %s", st.StoragePath, targetC)
	}
}

func TestAutomaticRetriesCountedAndExhaustedManualNotCounted(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 2, 1000)
	stuck := w.add(2, defLoc, 2, 1000)
	stuckFile := filepath.Join(defLoc, string(stuck), "d0/f0.bin")
	if err := w.mem.SetImmutable(stuckFile, true); err != nil {
		t.Fatal(err)
	}
	w.start()
	w.apply(targetB)
	ev := w.waitFinals(1)[0]
	w.settle()
	if s := wharf.RelocationStatus(ev.LastStatus); s != wharf.RelocationSomeNotMoved || ev.Message != wharf.RelocationWarning || ev.AttemptsDone != 0 {
		t.Fatalf("first attempt: %+v", ev)
	}
	if p := findPkg(ev.Packages, stuck); p.State != api.RelocationLinked || !strings.Contains(p.Reason, "not-removable") {
		t.Errorf("stuck package: %+v", p)
	}
	w.checkAt(targetB, stuck)
	st := w.ctl.Status(context.Background())
	if want := w.clock.Now().Add(15 * time.Minute); !st.NextRetry.Equal(want) || st.StoragePath != targetB {
		t.Fatalf("after a warning: next retry %v (want %v), storage path %s", st.NextRetry, want, st.StoragePath)
	}
	// Not yet due: nothing.
	w.clock.Advance(14 * time.Minute)
	if got := w.settle(); len(got) != 1 {
		t.Fatalf("before the interval: %d events", len(got))
	}
	for n := 1; n <= 3; n++ {
		w.clock.Advance(time.Minute + 14*time.Minute*time.Duration(min(n-1, 1)))
		ev := w.waitFinals(n + 1)[n]
		w.settle()
		want := wharf.RelocationSomeNotMoved
		if n == 3 {
			want |= wharf.RelocationRetriesExhausted
		}
		if s := wharf.RelocationStatus(ev.LastStatus); s != want || ev.AttemptsDone != n || len(ev.Packages) != 1 {
			t.Fatalf("automatic retry %d: status %s attempts %d packages %+v", n, s, ev.AttemptsDone, ev.Packages)
		}
	}
	w.clock.Advance(time.Hour)
	if got := w.settle(); len(got) != 4 {
		t.Fatalf("after the retries are used up: %d events, want 4", len(got))
	}
	if st := w.ctl.Status(context.Background()); !st.NextRetry.IsZero() || st.AttemptsDone != 3 {
		t.Errorf("exhausted: %+v", st)
	}
	// The attribute goes; a manual retry moves it and does not count.
	if err := w.mem.SetImmutable(stuckFile, false); err != nil {
		t.Fatal(err)
	}
	if err := w.ctl.Retry(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev = w.waitFinals(5)[4]
	w.settle()
	if s := wharf.RelocationStatus(ev.LastStatus); s != wharf.RelocationSuccess|wharf.RelocationManual || ev.AttemptsDone != 3 {
		t.Fatalf("manual retry: status %s attempts %d", s, ev.AttemptsDone)
	}
	w.checkAt(targetB)
	if got := metricValue(t, w.reg, "wharf_relocation_attempts_total", "kind", "automatic", "result", "warning"); got != 3 {
		t.Errorf("automatic attempts metric %v, want 3", got)
	}
}

func TestCountersSurviveRestart(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1, 100)
	stuck := w.add(2, defLoc, 1, 100)
	if err := w.mem.SetImmutable(filepath.Join(defLoc, string(stuck), "d0/f0.bin"), true); err != nil {
		t.Fatal(err)
	}
	w.start()
	w.apply(targetB)
	w.waitFinals(1)
	w.settle()
	w.clock.Advance(15 * time.Minute)
	w.waitFinals(2)
	w.settle()
	before := w.ctl.Status(context.Background())
	if before.AttemptsDone != 1 {
		t.Fatalf("attempts done %d, want 1", before.AttemptsDone)
	}
	// Restart: stop, close the state DB, open it again.
	w.stop()
	w.st.Close()
	w.openStore()
	w.start()
	after := w.ctl.Status(context.Background())
	if after.AttemptsDone != 1 || !after.NextRetry.Equal(before.NextRetry) || after.StoragePath != targetB ||
		after.LastStatus != before.LastStatus || after.Event == nil || after.Event.AttemptsDone != 1 {
		t.Fatalf("after restart: %+v\nbefore: %+v", after, before)
	}
	// Without any configuration yet, the next retry is still due.
	w.clock.Advance(15 * time.Minute)
	ev := w.waitFinals(3)[2]
	if ev.AttemptsDone != 2 {
		t.Errorf("the retry after restart counted %d, want 2", ev.AttemptsDone)
	}
}

func TestResumesAnInterruptedAttempt(t *testing.T) {
	w := newWorld(t)
	for n := 1; n <= 3; n++ {
		w.add(n, defLoc, 2, 500)
	}
	// As if the PS died in an attempt toward /vol/b.
	if err := w.st.SaveRelocationState(context.Background(), store.RelocationState{StoragePath: defLoc, Target: targetB,
		From: defLoc, LastTried: targetB, Running: true, EventSent: true}); err != nil {
		t.Fatal(err)
	}
	w.start()
	if got := w.ctl.Primary(); got != targetB {
		t.Errorf("primary at start: %s, want %s (new downloads go to the target)", got, targetB)
	}
	ev := w.waitFinals(1)[0]
	w.settle()
	if wharf.RelocationStatus(ev.LastStatus) != wharf.RelocationSuccess || ev.StoragePath != targetB {
		t.Fatalf("resumed attempt: %+v", ev)
	}
	w.checkAt(targetB)
}

func TestCheckLocationTaskMatchesTheAttempt(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 2, 1000)
	w.add(2, "/vol/b/Package Delivery", 2, 1000)
	w.add(3, rotLoc, 1, 10)
	// A folder holding someone else's files, on /vol/c.
	if err := w.mem.WriteFile("/vol/c/theirs/notes.txt", []byte("mine")); err != nil {
		t.Fatal(err)
	}
	w.start()
	tasks := []api.Task{
		{ID: "t1", Type: api.TaskCheckLocation, Path: targetB},
		{ID: "t2", Type: api.TaskCheckLocation, Path: "/vol/c/theirs"},
		{ID: "t3", Type: api.TaskCheckLocation, Path: "/etc/wharf"},
	}
	w.apply(api.LocationDefault, tasks...)
	w.apply(api.LocationDefault, tasks...) // the same tasks again: answered once
	waitFor(t, "three task answers", func() bool { return len(w.ns.results()) >= 3 })
	time.Sleep(20 * time.Millisecond)
	res := w.ns.results()
	if len(res) != 3 {
		t.Fatalf("task answers: %+v", res)
	}
	plans := map[string]*api.LocationPlan{}
	for id, r := range res {
		if r.Error != "" || r.Plan == nil {
			t.Fatalf("task %s: %+v", id, r)
		}
		plans[id] = r.Plan
	}
	if p := plans["t1"]; p.Status != 0 || p.RenamePackages != 1 || p.CopyPackages != 2 || p.CopyBytes != 2010 || len(p.Prerequisites) != 6 {
		t.Errorf("plan of %s: %+v", targetB, p)
	}
	if p := plans["t2"]; wharf.RelocationStatus(p.Status) != wharf.RelocationInvalidTarget {
		t.Errorf("plan of a folder with foreign files: %+v", p)
	}
	if p := plans["t3"]; !wharf.RelocationStatus(p.Status).Has(wharf.RelocationKnownFolder) {
		t.Errorf("plan of /etc/wharf: %+v", p)
	}
	// The attempts reach the same verdicts.
	for i, c := range []struct {
		task string
		path string
	}{{"t2", "/vol/c/theirs"}, {"t3", "/etc/wharf"}, {"t1", targetB}} {
		w.apply(c.path)
		ev := w.waitFinals(i + 1)[i]
		w.settle()
		got := wharf.RelocationStatus(ev.LastStatus) & wharf.RelocationPrerequisites
		if want := wharf.RelocationStatus(plans[c.task].Status); got != want {
			t.Errorf("attempt to %s: prerequisite bits %s, the plan said %s", c.path, got, want)
		}
	}
	w.checkAt(targetB)
	if got := metricValue(t, w.reg, "wharf_relocation_attempts_total", "kind", "policy", "result", "refused"); got != 2 {
		t.Errorf("refused attempts metric %v, want 2", got)
	}
	if _, err := w.mem.Lstat("/vol/c/theirs/" + storeroot.MarkerName); err == nil {
		t.Error("a refused target got a store marker")
	}
}

func TestRefusedTargetWaitsForManualRetry(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1, 10)
	w.facts.SetAvail("/vol/b", 1000) // too small
	w.start()
	w.apply(targetB)
	ev := w.waitFinals(1)[0]
	w.settle()
	if s := wharf.RelocationStatus(ev.LastStatus); s != wharf.RelocationInsufficientSpace || len(ev.Packages) != 0 {
		t.Fatalf("refused attempt: %+v", ev)
	}
	if ev.StoragePath != targetB || ev.StoragePathInEffect != filepath.Clean(defLoc) || ev.Outcome != api.OutcomeRefused {
		t.Errorf("refused attempt: target %q, in effect %q, outcome %q; want %q, %q, refused", ev.StoragePath,
			ev.StoragePathInEffect, ev.Outcome, targetB, defLoc)
	}
	if got := w.placer.primaries(); len(got) != 0 {
		t.Errorf("a refused target became the primary location: %v", got)
	}
	w.apply(targetB)
	w.clock.Advance(time.Hour)
	if got := w.settle(); len(got) != 1 {
		t.Fatalf("refused target again: %d events, want 1", len(got))
	}
	// Space is freed; the NS asks for a retry (a server task), once.
	w.facts.SetAvail("/vol/b", 40<<30)
	task := api.Task{ID: "r1", Type: api.TaskRetryRelocation}
	w.apply(targetB, task)
	ev = w.waitFinals(2)[1]
	w.settle()
	w.apply(targetB, task)
	if got := w.settle(); len(got) != 2 {
		t.Errorf("the same retry task twice: %d events, want 2", len(got))
	}
	if s := wharf.RelocationStatus(ev.LastStatus); s != wharf.RelocationSuccess|wharf.RelocationManual || ev.AttemptsDone != 0 {
		t.Errorf("manual retry: %+v", ev)
	}
	if res := w.ns.results(); res["r1"].Error != "" || len(res) != 1 {
		t.Errorf("task answers: %+v", res)
	}
	w.checkAt(targetB)
}

func TestExclusiveModePausesAndRestores(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 2, 1000)
	w.add(2, defLoc, 2, 1000)
	w.start()
	release := w.fs.block(targetB + "/" + storeroot.RelocateDir + "/")
	go w.applyMode(targetB, api.RelocationExclusive)
	<-w.fs.blocked
	if d, s := w.placer.isPaused(location.PauseExclusive), w.pause.serving503(); !d || !s {
		t.Errorf("during an exclusive attempt: downloads paused %v, serving paused %v", d, s)
	}
	if held, _ := w.pause.removals(); held != 1 {
		t.Errorf("during an attempt: removals held %d times, want 1", held)
	}
	close(release)
	w.waitFinals(1)
	w.settle()
	if d, s := w.placer.isPaused(location.PauseExclusive), w.pause.serving503(); d || s {
		t.Errorf("after the attempt: downloads paused %v, serving paused %v", d, s)
	}
	if held, released := w.pause.removals(); held != 0 || released != 1 {
		t.Errorf("after the attempt: removals held %d, released %d times; want 0 and 1", held, released)
	}
	if w.pause.retryAfter != 60*time.Second {
		t.Errorf("retry after %v", w.pause.retryAfter)
	}
	w.checkAt(targetB)

	// Online mode pauses nothing.
	w.pause.reset()
	w.apply(api.LocationDefault)
	w.waitFinals(2)
	w.settle()
	if w.pause.calls != 0 || w.placer.isPaused(location.PauseExclusive) {
		t.Errorf("online attempt paused something (%d calls)", w.pause.calls)
	}
}

func TestDanglingLinkOfRemovedPackageIsTidied(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1, 10)
	stuck := w.add(2, defLoc, 1, 10)
	if err := w.mem.SetImmutable(filepath.Join(defLoc, string(stuck), "d0/f0.bin"), true); err != nil {
		t.Fatal(err)
	}
	w.start()
	w.apply(targetB)
	w.waitFinals(1)
	w.settle()
	// Package 2 is unassigned: its folder and row go, its link stays.
	if err := w.mem.SetImmutable(filepath.Join(defLoc, string(stuck), "d0/f0.bin"), false); err != nil {
		t.Fatal(err)
	}
	if err := w.mem.RemoveAll(filepath.Join(defLoc, string(stuck))); err != nil {
		t.Fatal(err)
	}
	if err := w.st.Delete(context.Background(), string(stuck)); err != nil {
		t.Fatal(err)
	}
	delete(w.files, stuck)
	w.clock.Advance(2 * time.Minute)
	w.apply(targetB)
	waitFor(t, "the dangling link to go", func() bool {
		_, err := w.mem.Lstat(filepath.Join(targetB, string(stuck)))
		return err != nil
	})
}

func findPkg(list []api.RelocationPackage, id wharf.PackageID) api.RelocationPackage {
	for _, p := range list {
		if p.PackageID == string(id) {
			return p
		}
	}
	return api.RelocationPackage{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// metricValue returns the value of the counter name with the labels
// given as name, value pairs (0 when there is none).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			n := 0
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
					n++
				}
			}
			if n == len(want) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// ---- fakes

type fakeNS struct {
	mu     sync.Mutex
	events []api.LocationStatus
	tasks  map[string]api.TaskResult
}

func (n *fakeNS) PostLocationStatus(_ context.Context, _ string, ev api.LocationStatus) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, ev)
	return nil
}

func (n *fakeNS) CompleteTask(_ context.Context, _ string, id string, res api.TaskResult) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tasks == nil {
		n.tasks = map[string]api.TaskResult{}
	}
	n.tasks[id] = res
	return nil
}

func (n *fakeNS) finals() []api.LocationStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []api.LocationStatus
	for _, e := range n.events {
		if e.Progress == nil {
			out = append(out, e)
		}
	}
	return out
}

func (n *fakeNS) progress() []api.LocationStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []api.LocationStatus
	for _, e := range n.events {
		if e.Progress != nil {
			out = append(out, e)
		}
	}
	return out
}

func (n *fakeNS) results() map[string]api.TaskResult {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]api.TaskResult{}
	for k, v := range n.tasks {
		out[k] = v
	}
	return out
}

type fakePlacer struct {
	mu      sync.Mutex
	set     []string
	paused  map[string]bool
	resumed chan struct{} // closed and replaced at every Resume
}

func (p *fakePlacer) SetPrimary(dir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.set = append(p.set, dir)
}

func (p *fakePlacer) Pause(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		p.paused = map[string]bool{}
	}
	p.paused[reason] = true
}

func (p *fakePlacer) Resume(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.paused, reason)
	if p.resumed != nil {
		close(p.resumed)
		p.resumed = nil
	}
}

func (p *fakePlacer) isPaused(reason string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused[reason]
}

// waitResumed waits until placements are not paused for reason.
func (p *fakePlacer) waitResumed(t *testing.T, reason string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		p.mu.Lock()
		if !p.paused[reason] {
			p.mu.Unlock()
			return
		}
		if p.resumed == nil {
			p.resumed = make(chan struct{})
		}
		ch := p.resumed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("placements still paused (%s) after 20s", reason)
		}
	}
}

func (p *fakePlacer) primaries() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.set)
}

// fakePause is the downloader's removals and serving's 503 gate.
type fakePause struct {
	mu         sync.Mutex
	held       int // HoldRemovals calls not yet released
	released   int // ReleaseRemovals calls
	serving    bool
	calls      int
	retryAfter time.Duration
}

func (p *fakePause) HoldRemovals() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held++
}

func (p *fakePause) ReleaseRemovals() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held--
	p.released++
}

func (p *fakePause) Unavailable(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serving, p.retryAfter = true, d
	p.calls++
}

func (p *fakePause) Available() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serving = false
	p.calls++
}

func (p *fakePause) serving503() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serving
}

func (p *fakePause) removals() (held, released int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held, p.released
}

func (p *fakePause) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = 0
}

// gateFS blocks the first Create below a prefix until released.
type gateFS struct {
	fsys.FS
	mu      sync.Mutex
	prefix  string
	release chan struct{}
	blocked chan struct{}
}

// block makes the next Create below prefix wait for the returned channel
// to close; gateFS.blocked is closed when it waits.
func (g *gateFS) block(prefix string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.prefix, g.release, g.blocked = prefix, make(chan struct{}), make(chan struct{})
	return g.release
}

func (g *gateFS) Create(name string, perm fs.FileMode) (fsys.File, error) {
	g.mu.Lock()
	var wait chan struct{}
	if g.prefix != "" && strings.HasPrefix(name, g.prefix) {
		wait = g.release
		close(g.blocked)
		g.prefix = ""
	}
	g.mu.Unlock()
	if wait != nil {
		<-wait
	}
	return g.FS.Create(name, perm)
}

// A package that becomes ready in the old location while an attempt runs
// (its download was under way when the attempt began) is moved by another
// pass of the same attempt.
func TestPackageReadyDuringAttemptIsMovedToo(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 2, 100)
	w.add(2, defLoc, 2, 100)
	w.start(func(o *location.Options) {
		o.Engine = func(eo *relocate.Options) { eo.Parallel = 1 }
	})
	release := w.fs.block(targetB + "/" + storeroot.RelocateDir + "/")
	go w.apply(targetB)
	<-w.fs.blocked
	late := w.add(3, defLoc, 3, 100) // the download that finished meanwhile
	close(release)
	ev := w.waitFinals(1)[0]
	w.settle()
	if s := wharf.RelocationStatus(ev.LastStatus); s != wharf.RelocationSuccess {
		t.Fatalf("status %s: %+v", s, ev)
	}
	if p := findPkg(ev.Packages, late); p.State != api.RelocationMoved {
		t.Errorf("the late package: %+v", p)
	}
	w.checkAt(targetB)
}

// A download that was under way when the store moved and ends in the old
// location after the attempt is moved to the location in effect too.
func TestLatePackageInOldLocationIsCaughtUp(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1, 100)
	w.start()
	w.apply(targetB)
	w.waitFinals(1)
	w.settle()
	late := w.add(2, defLoc, 2, 100)
	w.clock.Advance(31 * time.Second)
	w.apply(targetB)
	ev := w.waitFinals(2)[1]
	w.settle()
	if s := wharf.RelocationStatus(ev.LastStatus); s != wharf.RelocationSuccess || ev.StoragePath != targetB {
		t.Fatalf("catch-up attempt: %+v", ev)
	}
	if p := findPkg(ev.Packages, late); p.State != api.RelocationMoved {
		t.Errorf("late package: %+v", p)
	}
	w.checkAt(targetB)
	// Nothing more to catch up: no further attempt.
	w.clock.Advance(time.Minute)
	w.apply(targetB)
	if got := w.settle(); len(got) != 2 {
		t.Errorf("%d attempts, want 2", len(got))
	}
}

// After a consolidation, the roots it emptied are gone — marker, empty
// temporary folders, the "Package Delivery" folder itself — while a root
// that still holds anything stays as it is.
func TestEmptiedRootsAreRetired(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1, 100)
	w.add(2, rotLoc, 1, 100)
	w.add(3, "/vol/b/Package Delivery", 1, 100)
	stuck := w.add(4, "/vol/b/Package Delivery", 1, 100) // stays behind a link
	if err := w.mem.SetImmutable(filepath.Join("/vol/b/Package Delivery", string(stuck), "d0/f0.bin"), true); err != nil {
		t.Fatal(err)
	}
	if err := w.mem.MkdirAll(defLoc + "/" + storeroot.DownloadDir); err != nil { // an empty temporary folder
		t.Fatal(err)
	}
	w.start()
	w.apply(targetC)
	ev := w.waitFinals(1)[0]
	w.settle()
	if s := wharf.RelocationStatus(ev.LastStatus); !s.Has(wharf.RelocationSomeNotMoved) {
		t.Fatalf("status %s", s)
	}
	w.checkAt(targetC, stuck)
	for _, gone := range []string{defLoc, rotLoc} {
		if _, err := w.mem.Lstat(gone); err == nil {
			names, _ := w.mem.ReadDir(gone)
			t.Errorf("emptied root %s is still there: %v", gone, names)
		}
	}
	if _, err := w.mem.Lstat("/vol/b/Package Delivery/" + storeroot.MarkerName); err != nil {
		t.Errorf("the root holding the linked package lost its marker: %v", err)
	}
	// The retry moves the last package: its root goes too.
	if err := w.mem.SetImmutable(filepath.Join("/vol/b/Package Delivery", string(stuck), "d0/f0.bin"), false); err != nil {
		t.Fatal(err)
	}
	if err := w.ctl.Retry(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.waitFinals(2)
	w.settle()
	w.checkAt(targetC)
	if _, err := w.mem.Lstat("/vol/b/Package Delivery"); err == nil {
		t.Error("the root emptied by the retry is still there")
	}
}

// A root with somebody else's file in it is never removed, and neither is
// that file.
func TestRootWithForeignFileStays(t *testing.T) {
	w := newWorld(t)
	w.add(1, rotLoc, 1, 100)
	if err := w.mem.WriteFile(rotLoc+"/README.txt", []byte("the admin's notes")); err != nil {
		t.Fatal(err)
	}
	w.start()
	w.apply(targetB)
	w.waitFinals(1)
	w.settle()
	w.checkAt(targetB)
	if got, err := w.mem.ReadFile(rotLoc + "/README.txt"); err != nil || string(got) != "the admin's notes" {
		t.Errorf("the admin's file: %q, %v", got, err)
	}
	if _, err := w.mem.Lstat(rotLoc + "/" + storeroot.MarkerName); err != nil {
		t.Errorf("a root that holds something lost its marker: %v", err)
	}
}

// An attempt redirected to another location before anything stayed at its
// target leaves no marker there.
func TestRedirectedTargetKeepsNoMarker(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1, 100)
	w.add(2, defLoc, 1, 100)
	if err := w.mem.MkdirAll(targetB); err != nil { // the admin made the folder
		t.Fatal(err)
	}
	w.start(func(o *location.Options) {
		o.Engine = func(eo *relocate.Options) { eo.Parallel = 1 }
	})
	release := w.fs.block(targetB + "/" + storeroot.RelocateDir + "/")
	go w.apply(targetB)
	<-w.fs.blocked
	applied := make(chan struct{})
	go func() { w.apply(targetC); close(applied) }()
	waitFor(t, "the running attempt to be asked to stop", func() bool {
		return w.ctl.Status(context.Background()).Location == targetC
	})
	close(release)
	<-applied
	w.waitFinals(2)
	w.settle()
	w.checkAt(targetC)
	names, err := w.mem.ReadDir(targetB)
	if err != nil || len(names) != 0 {
		t.Errorf("the abandoned target %s: %v, %v; want the admin's folder, empty", targetB, names, err)
	}
}

// Apply never waits for the controller: with an attempt stuck in a copy, a
// configuration naming another location returns at once; placements wait
// until the new location is decided.
func TestApplyDoesNotBlock(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1, 100)
	w.start(func(o *location.Options) {
		o.Engine = func(eo *relocate.Options) { eo.Parallel = 1 }
	})
	release := w.fs.block(targetB + "/" + storeroot.RelocateDir + "/")
	w.ctl.Apply(location.Config{Location: targetB})
	<-w.fs.blocked
	returned := make(chan struct{})
	go func() {
		w.ctl.Apply(location.Config{Location: targetC})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Apply waited for the attempt under way")
	}
	if !w.placer.isPaused(location.PauseDeciding) {
		t.Error("placements go on while the new location is not decided")
	}
	close(release)
	w.placer.waitResumed(t, location.PauseDeciding)
	w.waitFinals(2)
	w.settle()
	w.checkAt(targetC)
}

// TestRetryWhileALinkedPackageIsUnavailable: a package left behind a link
// whose store root becomes unavailable (its volume unmounted) is out of the
// relocation index, so a retry cannot see it; the retry must still not
// report success, but list it as behind its link (issue 16).
func TestRetryWhileALinkedPackageIsUnavailable(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 2, 1000)
	stuck := w.add(2, defLoc, 2, 1000)
	if err := w.mem.SetImmutable(filepath.Join(defLoc, string(stuck), "d0/f0.bin"), true); err != nil {
		t.Fatal(err)
	}
	w.start()
	w.apply(targetB)
	if ev := w.waitFinals(1)[0]; ev.Outcome != api.OutcomeWarning {
		t.Fatalf("first attempt: %+v", ev)
	}
	w.settle()
	w.st.SetRootAvailable(filepath.Clean(defLoc), false, "store root has no marker (volume not mounted?)")
	w.apply(targetB, api.Task{ID: "r1", Type: api.TaskRetryRelocation})
	ev := w.waitFinals(2)[1]
	w.settle()
	p := findPkg(ev.Packages, stuck)
	if ev.Outcome != api.OutcomeWarning || wharf.RelocationStatus(ev.LastStatus).Has(wharf.RelocationSuccess) ||
		p.State != api.RelocationLinked || !strings.Contains(p.Reason, "unavailable") {
		t.Errorf("retry with the linked package's root unavailable: outcome %q, status %s, package %+v", ev.Outcome,
			wharf.RelocationStatus(ev.LastStatus), p)
	}
}
