//go:build !windows

// Unix paths over the in-memory fakes: not run on Windows, where the
// *_windows_test.go files test on real drives.

package fetch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock/clocktest"
	"github.com/wharf-project/wharf/internal/ps/fetch"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/pstest"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume/volumetest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// memNS is an NS that serves manifests and blobs from memory, so a crash
// test runs without a network and the same way every time.
type memNS struct {
	pkgs  map[string]api.Package
	blobs map[string][]byte
}

func newMemNS() *memNS { return &memNS{pkgs: map[string]api.Package{}, blobs: map[string][]byte{}} }

// add publishes package n with the given files (path → content).
func (n *memNS) add(num int, files map[string]string) api.PackageSummary {
	id := string(relocatetest.ID(num))
	p := api.Package{PackageSummary: api.PackageSummary{ID: id, Name: fmt.Sprintf("p%d", num), Version: "1"}}
	for path, content := range files {
		sum := sha256.Sum256([]byte(content))
		d := hex.EncodeToString(sum[:])
		n.blobs[d] = []byte(content)
		p.Files = append(p.Files, api.File{Path: path, Size: int64(len(content)), SHA256: d})
		p.Size += int64(len(content))
	}
	p.FileCount = len(p.Files)
	n.pkgs[id] = p
	return p.PackageSummary
}

func (n *memNS) AgentPackage(_ context.Context, _, id string) (api.Package, error) {
	p, ok := n.pkgs[id]
	if !ok {
		return api.Package{}, wharf.Errorf(wharf.ErrNotFound, "package %s", id)
	}
	return p, nil
}

func (n *memNS) OpenBlob(_ context.Context, d wharf.Digest, offset int64) (io.ReadCloser, error) {
	b, ok := n.blobs[string(d)]
	if !ok {
		return nil, wharf.Errorf(wharf.ErrNotFound, "blob %s", d)
	}
	return io.NopCloser(bytes.NewReader(b[offset:])), nil
}

func (n *memNS) PutPackageStates(context.Context, string, []api.PackageState) error { return nil }

// crashWorld is one run of a crash test: volumes in memory, the state DB
// on disk (closed and opened again, as a restart does).
type crashWorld struct {
	t      *testing.T
	mem    *memfs.FS
	ff     *faultfs.FS
	dbPath string
	st     *store.Store
	ns     *memNS
	cfg    api.AgentConfig
	roots  *storeroot.Roots
}

const (
	rootA = "/vol/a/Package Delivery"
	rootB = "/vol/b/store"
)

func newCrashWorld(t *testing.T, dbPath string) *crashWorld {
	t.Helper()
	w := &crashWorld{t: t, mem: memfs.New(), dbPath: dbPath, ns: newMemNS()}
	for _, v := range []string{"/vol/a", "/vol/b"} {
		if err := w.mem.AddVolume(v, memfs.Volume{}); err != nil {
			t.Fatal(err)
		}
	}
	w.ff = faultfs.New(w.mem)
	w.openStore()
	w.cfg = api.AgentConfig{Settings: api.AgentSettings{DownloadConcurrency: 1}}
	return w
}

func (w *crashWorld) openStore() {
	w.t.Helper()
	st, err := store.Open(context.Background(), w.dbPath)
	if err != nil {
		w.t.Fatal(err)
	}
	w.st = st
	w.t.Cleanup(func() { st.Close() })
}

// restart drops what the crash did not make durable and opens the state DB
// again. Before anything recovers, every package the state DB calls ready
// must be whole where it says: the DB never gets ahead of the disk.
func (w *crashWorld) restart(what string) {
	w.t.Helper()
	w.mem.Crash()
	w.ff = faultfs.New(w.mem)
	w.st.Close()
	w.openStore()
	for _, sum := range w.cfg.Packages {
		p, ok := w.st.Get(sum.ID)
		if !ok || p.State != api.StateReady {
			continue
		}
		for _, f := range w.ns.pkgs[sum.ID].Files {
			got, err := w.mem.ReadFile(filepath.Join(p.Path, filepath.FromSlash(f.Path)))
			if err != nil || !bytes.Equal(got, w.ns.blobs[f.SHA256]) {
				w.t.Errorf("%s: package %s is ready in the state DB but its file %s at %s has %d bytes (%v), want the %d published",
					what, sum.ID, f.Path, p.Path, len(got), err, f.Size)
			}
		}
	}
}

func (w *crashWorld) fetcher(fs fsys.FS, primary string) *fetch.Fetcher {
	w.roots = storeroot.New(fs, "ps-crash", clocktest.NewInstant())
	return fetch.New(fetch.Options{Roots: w.roots, NS: w.ns, Store: w.st, Placer: place.Primary{Dir: primary},
		Clock: clocktest.NewInstant(), Logger: pstest.Logger(w.t), ReportDelay: time.Nanosecond})
}

// run recovers f and serves it until every package of the configuration is
// ready, or until stop says so; it returns whether all were ready.
func (w *crashWorld) run(f *fetch.Fetcher, stop func() bool) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := f.Recover(ctx); err != nil {
		if stop() {
			return false
		}
		w.t.Fatalf("Recover: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Serve(ctx)
	}()
	f.Apply(w.cfg, false)
	deadline := time.Now().Add(20 * time.Second)
	ready := false
	for !ready && !stop() {
		ready = w.allReady()
		if time.Now().After(deadline) {
			w.t.Fatalf("packages not ready after 20s")
		}
		time.Sleep(200 * time.Microsecond)
	}
	cancel()
	<-done
	return ready
}

func (w *crashWorld) allReady() bool {
	for _, p := range w.cfg.Packages {
		sp, ok := w.st.Get(p.ID)
		if !ok || sp.State != api.StateReady {
			return false
		}
	}
	return true
}

// check verifies every package of the configuration whole where the state
// DB says, its files the published bytes, and nothing left in temporary or
// trash folders.
func (w *crashWorld) check(what string, wantRoot string) {
	w.t.Helper()
	for _, sum := range w.cfg.Packages {
		p, ok := w.st.Get(sum.ID)
		if !ok || p.State != api.StateReady {
			w.t.Errorf("%s: package %s not ready (%v)", what, sum.ID, ok)
			continue
		}
		if wantRoot != "" && p.Root != wantRoot {
			w.t.Errorf("%s: package %s in %s, want %s", what, sum.ID, p.Root, wantRoot)
		}
		for _, f := range w.ns.pkgs[sum.ID].Files {
			got, err := w.mem.ReadFile(filepath.Join(p.Path, filepath.FromSlash(f.Path)))
			if err != nil || !bytes.Equal(got, w.ns.blobs[f.SHA256]) {
				w.t.Errorf("%s: package %s file %s: %d bytes, %v; want the %d published", what, sum.ID, f.Path, len(got), err, f.Size)
			}
		}
	}
	for _, root := range []string{rootA, rootB} {
		for _, d := range []string{storeroot.DownloadDir, storeroot.RelocateDir, storeroot.TrashDir} {
			es, _ := w.mem.ReadDir(filepath.Join(root, d))
			for _, e := range es {
				w.t.Errorf("%s: %s/%s/%s left behind", what, root, d, e.Name())
			}
		}
	}
}

func crashPackages(w *crashWorld) {
	w.cfg.Packages = append(w.cfg.Packages,
		w.ns.add(1, map[string]string{"a.txt": strings.Repeat("alpha ", 300), "d/e/b.bin": strings.Repeat("b", 5000), "d/c": "c"}),
		w.ns.add(2, map[string]string{"only": strings.Repeat("2", 7000)}),
	)
}

// TestDownloadCrashMatrix crashes the downloads of two packages at every
// file-system operation, restarts (what was not durable is gone, the state
// DB is opened again) and lets the fetcher finish: every package ends
// whole where the state DB names it, with nothing left in temporary or
// trash folders.
func TestDownloadCrashMatrix(t *testing.T) {
	dir := t.TempDir()
	clean := newCrashWorld(t, filepath.Join(dir, "clean.db"))
	crashPackages(clean)
	if !clean.run(clean.fetcher(clean.ff, rootA), func() bool { return false }) {
		t.Fatal("clean run did not finish")
	}
	clean.check("clean run", rootA)
	n := clean.ff.Ops()
	t.Logf("a clean download of 2 packages takes %d file-system operations", n)
	for k := 0; k <= n; k++ {
		w := newCrashWorld(t, filepath.Join(dir, fmt.Sprintf("crash-%d.db", k)))
		crashPackages(w)
		w.ff.CrashAt(k)
		w.run(w.fetcher(w.ff, rootA), w.ff.Crashed)
		w.restart(fmt.Sprintf("crash at op %d of %d", k, n))
		if !w.run(w.fetcher(w.mem, rootA), func() bool { return false }) {
			t.Fatalf("crash at op %d: not finished after the restart", k)
		}
		w.check(fmt.Sprintf("crash at op %d of %d", k, n), rootA)
		if t.Failed() {
			return
		}
	}
}

// TestDownloadRacingRelocationCrashMatrix runs a download and a relocation
// of the store at once over one file system — two ready packages move from
// volume a to volume b while a third is downloaded into a — crashes them at
// every operation, then restarts as the Package Server does (the
// relocation journal recovered first, then the downloads) and finishes
// both: every package ends whole at the target, named there by the state
// DB, nothing left behind, the journal closed.
func TestDownloadRacingRelocationCrashMatrix(t *testing.T) {
	dir := t.TempDir()
	setup := func(w *crashWorld) {
		t.Helper()
		crashPackages(w) // 1 and 2 become ready in a before the race
		if !w.run(w.fetcher(w.mem, rootA), func() bool { return false }) {
			t.Fatal("setup downloads did not finish")
		}
		w.cfg.Packages = append(w.cfg.Packages,
			w.ns.add(3, map[string]string{"x/y/z": strings.Repeat("z", 9000), "w": "w"}))
		w.ff = faultfs.New(w.mem)
	}
	facts := func(w *crashWorld) *volumetest.Fake {
		f := volumetest.New()
		for _, v := range []string{"/vol/a", "/vol/b"} {
			info := volumetest.Disk(v, "ext4", 1<<30, 1<<29)
			info.DevID, _ = w.mem.Dev(v)
			f.Add(info)
		}
		return f
	}
	engine := func(w *crashWorld, fs fsys.FS) *relocate.Engine {
		e, err := relocate.New(relocate.Options{FS: fs, Roots: w.roots, Facts: facts(w), Index: w.st.RelocationIndex(),
			Journal: w.st.RelocationJournal(), Server: "ps-crash", Parallel: 1, Log: pstest.Logger(t),
			KnownFolder: func(string) (bool, string) { return false, "" }})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	req := relocate.Request{Target: rootB, From: rootA}
	// race downloads package 3 into a while the engine moves the store to
	// b; after a crash, stop says to give up.
	race := func(w *crashWorld, fs fsys.FS, stop func() bool) {
		f := w.fetcher(fs, rootA)
		e := engine(w, fs)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Run(context.Background(), req); err != nil && !stop() {
				t.Errorf("relocation: %v", err)
			}
		}()
		w.run(f, stop)
		wg.Wait()
	}
	// finish is the restart: the journal first, then the downloads, then
	// the relocation again (package 3 became ready in a meanwhile).
	finish := func(w *crashWorld, what string) {
		f := w.fetcher(w.mem, rootB)
		e := engine(w, w.mem)
		if err := e.Recover(context.Background()); err != nil {
			t.Fatalf("%s: relocation Recover: %v", what, err)
		}
		if !w.run(f, func() bool { return false }) {
			t.Fatalf("%s: downloads not finished", what)
		}
		res, err := e.Run(context.Background(), req)
		if err != nil || res.Status&wharf.RelocationSuccess == 0 {
			t.Fatalf("%s: relocation after the restart: %+v, %v", what, res, err)
		}
		if open, _ := w.st.RelocationJournal().List(context.Background()); len(open) > 0 {
			t.Errorf("%s: journal entries open: %+v", what, open)
		}
		w.check(what, rootB)
	}

	clean := newCrashWorld(t, filepath.Join(dir, "clean.db"))
	setup(clean)
	race(clean, clean.ff, func() bool { return false })
	n := clean.ff.Ops()
	finish(clean, "clean run")
	t.Logf("a download racing a relocation takes about %d file-system operations", n)
	for k := 0; k <= n; k++ {
		w := newCrashWorld(t, filepath.Join(dir, fmt.Sprintf("race-%d.db", k)))
		setup(w)
		w.ff.CrashAt(k)
		race(w, w.ff, w.ff.Crashed)
		w.restart(fmt.Sprintf("crash at op %d of about %d", k, n))
		finish(w, fmt.Sprintf("crash at op %d of about %d", k, n))
		if t.Failed() {
			return
		}
	}
}
