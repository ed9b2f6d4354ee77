package fetch_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ps/clock/clocktest"
	"github.com/wharf-project/wharf/internal/ps/fetch"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/pstest"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
	"github.com/wharf-project/wharf/internal/wharf"
)

const psName = "ps1"

// env is one Package Server's fetcher against the real NS (nstest).
type env struct {
	t      *testing.T
	ns     *nstest.NS
	client *apiclient.Client
	agent  fetch.NS // what the fetcher calls; default client
	dir    string   // install dir
	root   string   // primary location
	st     *store.Store
	clock  *clocktest.Instant
	f      *fetch.Fetcher
	placer fetch.Placer // default place.Primary{Dir: root}
	cancel context.CancelFunc
	done   chan struct{}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ns := nstest.New(t)
	anon, err := apiclient.New(ns.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	enr, err := anon.Enroll(context.Background(), api.EnrollRequest{Token: ns.EnrollToken(), Name: psName, OS: "linux", URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := apiclient.New(ns.URL, enr.Credential, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &env{t: t, ns: ns, client: client, dir: dir, root: filepath.Join(dir, "Package Delivery"), clock: clocktest.NewInstant()}
	e.openStore()
	t.Cleanup(func() {
		e.stop()
		e.st.Close()
	})
	return e
}

func (e *env) openStore() {
	st, err := store.Open(context.Background(), filepath.Join(e.dir, "state", "ps.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
}

// start builds a fetcher, recovers and serves it.
func (e *env) start() {
	e.t.Helper()
	var placer fetch.Placer = place.Primary{Dir: e.root}
	if e.placer != nil {
		placer = e.placer
	}
	var agent fetch.NS = e.client
	if e.agent != nil {
		agent = e.agent
	}
	e.f = fetch.New(fetch.Options{
		Roots: storeroot.New(fsys.OS{}, psName, e.clock), NS: agent, Store: e.st, Placer: placer,
		Clock: e.clock, Logger: pstest.Logger(e.t), ReportDelay: time.Nanosecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.f.Recover(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.cancel, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		e.f.Serve(ctx)
	}()
}

// stop stops the fetcher (a restart follows with start).
func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
}

// restart simulates a restart of the whole PS: fetcher and DB.
func (e *env) restart() {
	e.stop()
	e.st.Close()
	e.openStore()
	e.start()
}

// apply fetches the current configuration and applies it.
func (e *env) apply(force bool) {
	e.t.Helper()
	cfg, _, _, err := e.client.AgentConfig(context.Background(), psName, "", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	e.f.Apply(cfg, force)
}

func (e *env) waitState(id, state string) api.PackageState {
	e.t.Helper()
	s, ok := e.ns.WaitState(psName, id, state, 20*time.Second)
	if !ok {
		e.t.Fatalf("package %s: got state %q (%s), want %q", id, s.State, s.Reason, state)
	}
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// checkPackage checks that every file of the package is in its folder with
// the right bytes, and nothing else is.
func checkPackage(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("package file %s: %v", p, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("package file %s: got %d bytes that differ from the %d published", p, len(got), len(want))
		}
	}
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if n != len(files) {
		t.Errorf("package folder %s: got %d files, want %d", dir, n, len(files))
	}
}

func noTemp(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{storeroot.DownloadDir, storeroot.TrashDir} {
		entries, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range entries {
			t.Errorf("leftover %s/%s in %s", d, e.Name(), root)
		}
	}
}

func TestDownloadsReachReady(t *testing.T) {
	e := newEnv(t)
	custom := filepath.Join(t.TempDir(), "custom place")
	a := map[string][]byte{"setup.exe": randBytes(300 << 10), "docs/readme.txt": []byte("hello"), "docs/deep/empty": {}}
	b := map[string][]byte{"b.bin": randBytes(1000)}
	c := map[string][]byte{"c.msi": randBytes(70000)}
	pa := e.ns.AddPackage("a", "1", a)
	pb := e.ns.AddPackage("b", "2", b)
	pc := e.ns.AddPackage("c", "3", c, func(s *api.PackageSummary) { s.CustomLocation = custom })
	e.start()
	e.apply(false)

	for _, tc := range []struct {
		sum   api.PackageSummary
		files map[string][]byte
		root  string
	}{{pa, a, e.root}, {pb, b, e.root}, {pc, c, custom}} {
		st := e.waitState(tc.sum.ID, api.StateReady)
		want := filepath.Join(tc.root, tc.sum.ID)
		if st.Path != want {
			t.Errorf("package %s: reported path %q, want %q", tc.sum.Name, st.Path, want)
		}
		checkPackage(t, want, tc.files)
		p, ok := e.st.Get(tc.sum.ID)
		if !ok || p.State != api.StateReady || p.Path != want || p.FileCount != len(tc.files) {
			t.Errorf("state db for %s: got %+v", tc.sum.Name, p)
		}
		for _, f := range p.Files {
			if f.ModTime.IsZero() || string(f.SHA256) != nstest.Sum(tc.files[f.Path]) {
				t.Errorf("state db file %s/%s: got %+v", tc.sum.Name, f.Path, f)
			}
		}
		if ok, _ := storeroot.New(fsys.OS{}, "", nil).HasMarker(tc.root); !ok {
			t.Errorf("store root %s has no marker", tc.root)
		}
	}
	// Once every package is ready (not before: another may still be
	// downloading into the same root), no temporary folder is left.
	for _, root := range []string{e.root, custom} {
		noTemp(t, root)
	}
}

func TestCorruptBlobFailsAndLeavesNothingInPlace(t *testing.T) {
	e := newEnv(t)
	bad := map[string][]byte{"good.txt": []byte("fine"), "bad.bin": randBytes(5000)}
	pbad := e.ns.AddPackage("bad", "1", bad)
	e.ns.Corrupt(nstest.Sum(bad["bad.bin"]), true)
	pgood := e.ns.AddPackage("good", "1", map[string][]byte{"x": []byte("x")})
	e.start()
	e.apply(false)

	st := e.waitState(pbad.ID, api.StateFailed)
	if !strings.Contains(st.Reason, "sha256 mismatch") || !strings.Contains(st.Reason, "bad.bin") {
		t.Errorf("reason %q: want it to name the file and the sha256 mismatch", st.Reason)
	}
	e.waitState(pgood.ID, api.StateReady)
	if _, err := os.Lstat(filepath.Join(e.root, pbad.ID)); !os.IsNotExist(err) {
		t.Errorf("failed package is in place: lstat: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(e.root, storeroot.DownloadDir, pbad.ID, "bad.bin")); !os.IsNotExist(err) {
		t.Errorf("corrupt file kept in the temp folder: lstat: %v", err)
	}
	if p, _ := e.st.Get(pbad.ID); p.State != api.StateFailed {
		t.Errorf("state db: got %q, want failed", p.State)
	}

	// The NS fixes the blob: a forced update downloads it.
	e.ns.Corrupt(nstest.Sum(bad["bad.bin"]), false)
	e.apply(true)
	e.waitState(pbad.ID, api.StateReady)
	checkPackage(t, filepath.Join(e.root, pbad.ID), bad)
	noTemp(t, e.root)
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"big": randBytes(200 << 10)}
	p := e.ns.AddPackage("p", "1", files)
	e.ns.FailBlobs(2)
	e.ns.CutBlobs(3, 50<<10) // 503, 503, then three answers cut after 50 KiB each
	e.start()
	e.apply(false)
	e.waitState(p.ID, api.StateReady)
	checkPackage(t, filepath.Join(e.root, p.ID), files)
	if n := e.ns.BlobRequests(); n != 6 {
		t.Errorf("blob requests: got %d, want 6 (2 failed, 3 cut, 1 whole)", n)
	}
	var offsets []int64
	for _, r := range e.ns.Ranges() {
		offsets = append(offsets, r.Offset)
	}
	if want := []int64{50 << 10, 100 << 10, 150 << 10}; !equalInts(offsets, want) {
		t.Errorf("ranges: got %v, want %v (each retry resumes)", offsets, want)
	}
	if len(e.clock.Waits()) < 5 {
		t.Errorf("clock waits: got %v, want a backoff before each of 5 retries", e.clock.Waits())
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestResumeAfterRestart(t *testing.T) {
	for _, damage := range []bool{false, true} {
		name := "clean"
		if damage {
			name = "damaged partial file"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			files := map[string][]byte{"small": []byte("s"), "large.bin": randBytes(3 << 20)}
			d := nstest.Sum(files["large.bin"])
			p := e.ns.AddPackage("p", "1", files)
			e.ns.SetRate(1<<20, d)
			e.start()
			e.apply(false)
			waitFor(t, "half a MiB sent", func() bool { return e.ns.BytesSent(d) >= 512<<10 })
			e.stop()

			partial := filepath.Join(e.root, storeroot.DownloadDir, p.ID, "large.bin")
			fi, err := os.Stat(partial)
			if err != nil || fi.Size() == 0 || fi.Size() >= 3<<20 {
				t.Fatalf("partial file after stop: %v, %v", fi, err)
			}
			if _, err := os.Lstat(filepath.Join(e.root, p.ID)); !os.IsNotExist(err) {
				t.Fatalf("half package in place after stop: %v", err)
			}
			if damage {
				fh, _ := os.OpenFile(partial, os.O_RDWR, 0)
				fh.WriteAt([]byte{0xde, 0xad}, 10)
				fh.Close()
			}
			e.ns.SetRate(0)
			e.restart()
			e.apply(false)
			e.waitState(p.ID, api.StateReady)
			checkPackage(t, filepath.Join(e.root, p.ID), files)
			noTemp(t, e.root)

			var resumed bool
			for _, r := range e.ns.Ranges() {
				if r.Digest == d && r.Offset == fi.Size() {
					resumed = true
				}
			}
			if !resumed {
				t.Errorf("ranges %v: want one from offset %d of %s", e.ns.Ranges(), fi.Size(), d)
			}
		})
	}
}

func TestUnassignedPackagesAreRemoved(t *testing.T) {
	e := newEnv(t)
	keep := e.ns.AddPackage("keep", "1", map[string][]byte{"k": []byte("k")})
	gone := e.ns.AddPackage("gone", "1", map[string][]byte{"a/b/c": []byte("c")})
	slowFiles := map[string][]byte{"slow": randBytes(2 << 20)}
	slow := e.ns.AddPackage("slow", "1", slowFiles)
	e.ns.SetRate(256<<10, nstest.Sum(slowFiles["slow"]))
	e.start()
	e.apply(false)
	e.waitState(keep.ID, api.StateReady)
	e.waitState(gone.ID, api.StateReady)
	waitFor(t, "slow download under way", func() bool { return e.ns.BytesSent(nstest.Sum(slowFiles["slow"])) > 0 })

	e.ns.Unassign(gone.ID)
	e.ns.Unassign(slow.ID)
	e.apply(false)
	waitFor(t, "removal", func() bool {
		_, g := e.st.Get(gone.ID)
		_, s := e.st.Get(slow.ID)
		return !g && !s
	})
	for _, id := range []string{gone.ID, slow.ID} {
		if _, err := os.Lstat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
			t.Errorf("unassigned package %s still on disk: %v", id, err)
		}
	}
	noTemp(t, e.root)
	if _, err := os.Stat(filepath.Join(e.root, keep.ID, "k")); err != nil {
		t.Errorf("assigned package touched: %v", err)
	}
}

func TestConcurrencyBound(t *testing.T) {
	e := newEnv(t)
	e.ns.SetSettings(api.AgentSettings{PollWaitSeconds: 30, DownloadConcurrency: 2})
	e.ns.SetBlobDelay(50 * time.Millisecond)
	var ids []string
	for i := range 6 {
		ids = append(ids, e.ns.AddPackage("p", string(rune('a'+i)), map[string][]byte{"f1": randBytes(100), "f2": randBytes(100)}).ID)
	}
	e.start()
	e.apply(false)
	for _, id := range ids {
		e.waitState(id, api.StateReady)
	}
	if got := e.ns.MaxConcurrentBlobs(); got != 2 {
		t.Errorf("most concurrent blob downloads: got %d, want 2", got)
	}
}

func TestMissingMarkerMakesPackagesUnavailable(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"f": []byte("data")}
	p := e.ns.AddPackage("p", "1", files)
	e.start()
	e.apply(false)
	e.waitState(p.ID, api.StateReady)
	requests := e.ns.BlobRequests()
	marker := filepath.Join(e.root, storeroot.MarkerName)
	saved, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}

	// The marker disappears, as on an unmounted volume.
	os.Remove(marker)
	e.apply(false)
	st := e.waitState(p.ID, api.StateUnavailable)
	if !strings.Contains(st.Reason, storeroot.MarkerName) {
		t.Errorf("reason %q: want it to name the marker", st.Reason)
	}
	if _, err := e.st.Resolve(p.ID, "f"); err == nil {
		t.Error("unavailable package resolves for serving")
	}
	// A new package placed there is not downloaded either, and an
	// unassigned one is kept until the root is back.
	q := e.ns.AddPackage("q", "1", map[string][]byte{"g": []byte("g")})
	e.apply(false)
	e.restart() // the check at start finds the same
	e.apply(false)
	if st := e.waitState(q.ID, api.StateFailed); !strings.Contains(st.Reason, storeroot.MarkerName) {
		t.Errorf("new package on an unavailable root: reason %q, want it to name the marker", st.Reason)
	}
	time.Sleep(100 * time.Millisecond)
	if got := e.ns.BlobRequests(); got != requests {
		t.Errorf("blob requests while the root is unavailable: got %d more", got-requests)
	}
	if ok, _ := storeroot.New(fsys.OS{}, "", nil).HasMarker(e.root); ok {
		t.Error("the PS wrote a new marker over an unavailable root")
	}
	if _, err := os.Stat(filepath.Join(e.root, p.ID, "f")); err != nil {
		t.Errorf("package files touched: %v", err)
	}

	// The marker is back: ready again, and q comes down.
	if err := os.WriteFile(marker, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	e.apply(false)
	e.waitState(p.ID, api.StateReady)
	e.waitState(q.ID, api.StateReady)
	if _, err := e.st.Resolve(p.ID, "f"); err != nil {
		t.Errorf("resolve after the marker came back: %v", err)
	}
	checkPackage(t, filepath.Join(e.root, p.ID), files)
}

func TestUnmountedRootKeepsUnassignedUntilBack(t *testing.T) {
	e := newEnv(t)
	p := e.ns.AddPackage("p", "1", map[string][]byte{"f": []byte("data")})
	e.start()
	e.apply(false)
	e.waitState(p.ID, api.StateReady)

	away := e.root + ".unmounted"
	if err := os.Rename(e.root, away); err != nil {
		t.Fatal(err)
	}
	e.ns.Unassign(p.ID)
	e.apply(false)
	// The NS deleted it, so it keeps no state of it: the report is seen
	// in the NS's record of what servers reported.
	waitFor(t, "state unavailable reported", func() bool {
		for _, st := range e.ns.StateLog() {
			if st.PackageID == p.ID && st.State == api.StateUnavailable {
				return true
			}
		}
		return false
	})
	if _, ok := e.st.Get(p.ID); !ok {
		t.Fatal("package forgotten while its root is unavailable")
	}
	if _, err := os.Stat(e.root); !os.IsNotExist(err) {
		t.Errorf("root recreated over the mount point: %v", err)
	}
	if err := os.Rename(away, e.root); err != nil {
		t.Fatal(err)
	}
	e.apply(false)
	waitFor(t, "removal after the root came back", func() bool { _, ok := e.st.Get(p.ID); return !ok })
	if _, err := os.Lstat(filepath.Join(e.root, p.ID)); !os.IsNotExist(err) {
		t.Errorf("unassigned package still on disk: %v", err)
	}
}

func TestRecover(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"a": []byte("aaa"), "d/b": []byte("bbb")}
	p := e.ns.AddPackage("p", "1", files)
	e.start()
	e.apply(false)
	e.waitState(p.ID, api.StateReady)
	e.stop()

	// A crash between the rename into place and the DB update: the DB says
	// downloading, the folder is whole in place.
	ctx := context.Background()
	if err := e.st.SetState(ctx, p.ID, api.StateDownloading, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Leftovers: the temp folder of an unknown package, trash.
	stray := filepath.Join(e.root, storeroot.DownloadDir, "0b0b0b0b-0000-4000-8000-000000000000")
	os.MkdirAll(filepath.Join(stray, "x"), 0o755)
	os.WriteFile(filepath.Join(stray, "x", "y"), []byte("y"), 0o644)
	os.MkdirAll(filepath.Join(e.root, storeroot.TrashDir, "old-1234"), 0o755)

	e.restart()
	if got, _ := e.st.Get(p.ID); got.State != api.StateReady {
		t.Errorf("after recover: state %q, want ready", got.State)
	}
	noTemp(t, e.root)
	checkPackage(t, filepath.Join(e.root, p.ID), files)

	// A ready package whose file vanished is downloaded again.
	e.stop()
	os.Remove(filepath.Join(e.root, p.ID, "d", "b"))
	e.start()
	e.apply(false)
	waitFor(t, "re-download", func() bool {
		got, _ := e.st.Get(p.ID)
		_, err := os.Stat(filepath.Join(e.root, p.ID, "d", "b"))
		return got.State == api.StateReady && err == nil
	})
	checkPackage(t, filepath.Join(e.root, p.ID), files)
	noTemp(t, e.root)
}

// relocatingNS is a Notification Server gone wrong: it hands out a
// package's manifest with a relative custom location. The real NS refuses
// such a manifest at publish (catalog.checkCustomLocation), so only a
// stand-in of fetch.NS over it can, to show the PS checks anyway.
type relocatingNS struct {
	*apiclient.Client
	id, location string
}

func (r relocatingNS) AgentPackage(ctx context.Context, name, id string) (api.Package, error) {
	p, err := r.Client.AgentPackage(ctx, name, id)
	if id == r.id {
		p.CustomLocation = r.location
	}
	return p, err
}

func TestInvalidCustomLocationFails(t *testing.T) {
	e := newEnv(t)
	p := e.ns.AddPackage("p", "1", map[string][]byte{"f": []byte("f")}, func(s *api.PackageSummary) { s.CustomLocation = "/srv/valid" })
	e.agent = relocatingNS{Client: e.client, id: p.ID, location: "relative/path"}
	e.start()
	e.apply(false)
	st := e.waitState(p.ID, api.StateFailed)
	if !strings.Contains(st.Reason, "not an absolute path") {
		t.Errorf("reason %q: want it to say the custom location is not absolute", st.Reason)
	}
	if fl := e.f.Failures(); len(fl) != 1 || fl[0].Package.ID != p.ID {
		t.Errorf("failures: got %+v", fl)
	}
}

func TestBandwidthLimit(t *testing.T) {
	e := newEnv(t)
	e.ns.SetSettings(api.AgentSettings{DownloadBandwidth: 256 << 10})
	files := map[string][]byte{"f": randBytes(1 << 20)}
	p := e.ns.AddPackage("p", "1", files)
	e.start()
	e.apply(false)
	e.waitState(p.ID, api.StateReady)
	checkPackage(t, filepath.Join(e.root, p.ID), files)
	var total time.Duration
	for _, w := range e.clock.Waits() {
		if w > time.Millisecond {
			total += w
		}
	}
	// 1 MiB at 256 KiB/s: 4 s of waiting, give or take a chunk.
	if total < 3800*time.Millisecond || total > 4300*time.Millisecond {
		t.Errorf("waited %v in all, want about 4s", total)
	}
}

// A package the configuration lists but the NS will not describe (404) is
// not asked for in a loop.
func TestManifestNotFoundBacksOff(t *testing.T) {
	e := newEnv(t)
	p := e.ns.AddPackage("p", "1", map[string][]byte{"f": []byte("f")})
	cfg, _, _, err := e.client.AgentConfig(context.Background(), psName, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	e.ns.Unassign(p.ID) // the NS now answers 404 for it
	e.start()
	e.f.Apply(cfg, false) // a stale configuration that still lists it
	time.Sleep(200 * time.Millisecond)
	if s, ok := e.ns.State(psName, p.ID); ok {
		t.Errorf("reported %+v for a package the NS does not give out", s)
	}
	e.f.Apply(cfg, false)
	time.Sleep(100 * time.Millisecond)
	if fl := e.f.Failures(); len(fl) != 1 {
		t.Errorf("failures: %+v", fl)
	}
	if n := e.ns.ManifestRequests(); n != 1 {
		t.Errorf("manifest requests: got %d, want 1 (then a backoff)", n)
	}
	if _, err := os.Stat(filepath.Join(e.root, p.ID)); !os.IsNotExist(err) {
		t.Errorf("package folder: %v", err)
	}
}

// While removals are held (a relocation moves the store), an unassigned
// package stays; once released it goes, and the packages whose folder
// changed are reported with their new path.
func TestHoldRemovals(t *testing.T) {
	e := newEnv(t)
	keep := e.ns.AddPackage("keep", "1", map[string][]byte{"k": []byte("k")})
	gone := e.ns.AddPackage("gone", "1", map[string][]byte{"a/b/c": []byte("c")})
	e.start()
	e.apply(false)
	e.waitState(keep.ID, api.StateReady)
	e.waitState(gone.ID, api.StateReady)

	e.f.HoldRemovals()
	e.f.HoldRemovals() // calls nest
	e.ns.Unassign(gone.ID)
	e.apply(false)
	e.f.ReleaseRemovals()
	// Reconciles happen at every apply; two more must not remove it.
	e.apply(false)
	e.apply(false)
	if _, ok := e.st.Get(gone.ID); !ok {
		t.Fatal("an unassigned package was removed while removals were held")
	}
	if _, err := os.Stat(filepath.Join(e.root, gone.ID, "a", "b", "c")); err != nil {
		t.Fatalf("held package's file: %v", err)
	}
	// A relocation moved package keep to another store root: its folder,
	// then its switch in the index.
	newRoot := filepath.Join(e.dir, "moved")
	if err := storeroot.New(fsys.OS{}, psName, nil).Prepare(newRoot); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(newRoot, keep.ID)
	if err := os.Rename(filepath.Join(e.root, keep.ID), moved); err != nil {
		t.Fatal(err)
	}
	if err := e.st.RelocationIndex().SetLocation(context.Background(), wharf.PackageID(keep.ID), relocate.Location{Folder: moved}); err != nil {
		t.Fatal(err)
	}
	reports := len(e.ns.StateLog())
	e.f.ReleaseRemovals()
	waitFor(t, "removal after the release", func() bool {
		_, ok := e.st.Get(gone.ID)
		return !ok
	})
	if _, err := os.Lstat(filepath.Join(e.root, gone.ID)); !os.IsNotExist(err) {
		t.Errorf("unassigned package still on disk: %v", err)
	}
	waitFor(t, "the states reported again", func() bool {
		for _, s := range e.ns.StateLog()[reports:] {
			if s.PackageID == keep.ID && s.State == api.StateReady && s.Path == moved {
				return true
			}
		}
		return false
	})
}
