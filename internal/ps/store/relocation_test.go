package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume/volumetest"
	"github.com/wharf-project/wharf/internal/wharf"
)

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// putReady stores a ready package in root with files (path → size).
func putReady(t testing.TB, st *store.Store, id, root string, files map[string]int64, custom string) {
	t.Helper()
	ctx := context.Background()
	p := store.Package{ID: id, Name: "n" + id[len(id)-2:], Version: "1", Root: root, Path: filepath.Join(root, id),
		State: api.StateDownloading, CustomLocation: custom}
	mt := map[string]time.Time{}
	for path, size := range files {
		p.Files = append(p.Files, store.File{File: wharf.File{Path: path, Size: size, SHA256: wharf.Digest(fmt.Sprintf("%064d", size))}})
		p.Size += size
		p.FileCount++
		mt[path] = time.Unix(1700000000, 0)
	}
	if err := st.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkReady(ctx, id, mt, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestRelocationIndex(t *testing.T) {
	skipUnixPaths(t)
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "ps.db")
	st := openStore(t, dbPath)
	ids := []string{}
	for n := range 5 {
		ids = append(ids, string(relocatetest.ID(n+1)))
	}
	putReady(t, st, ids[0], "/a/store", map[string]int64{"x": 1, "dir/é/long.bin": 10}, "")
	putReady(t, st, ids[1], "/b/store", map[string]int64{"y": 5}, "")
	putReady(t, st, ids[2], "/custom", map[string]int64{"z": 7}, "/custom")
	putReady(t, st, ids[3], "/gone/store", map[string]int64{"w": 2}, "")
	// Not ready: not listed.
	if err := st.Put(ctx, store.Package{ID: ids[4], Root: "/a/store", Path: "/a/store/" + ids[4], State: api.StateDownloading,
		Files: []store.File{{File: wharf.File{Path: "v", Size: 1, SHA256: "x"}}}}); err != nil {
		t.Fatal(err)
	}
	st.SetRootAvailable("/gone/store", false, "no marker")

	idx := st.RelocationIndex()
	var all []relocate.Package
	var after wharf.PackageID
	for {
		page, err := idx.Packages(ctx, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) != 1 {
			t.Fatalf("page of %d, want 1", len(page))
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	want := []relocate.Package{
		{ID: relocatetest.ID(1), Location: relocate.Location{Folder: "/a/store/" + ids[0]}, Size: 11, LongestPath: "dir/é/long.bin"},
		{ID: relocatetest.ID(2), Location: relocate.Location{Folder: "/b/store/" + ids[1]}, Size: 5, LongestPath: "y"},
		{ID: relocatetest.ID(3), Location: relocate.Location{Folder: "/custom/" + ids[2]}, Custom: true, Size: 7, LongestPath: "z"},
	}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("packages:\n got %+v\nwant %+v", all, want)
	}

	files, err := idx.Files(ctx, relocatetest.ID(1), "", 1)
	if err != nil || len(files) != 1 || files[0].Path != "dir/é/long.bin" || files[0].Size != 10 {
		t.Fatalf("first page of files: %+v, %v", files, err)
	}
	files, err = idx.Files(ctx, relocatetest.ID(1), files[0].Path, 10)
	if err != nil || len(files) != 1 || files[0].Path != "x" {
		t.Fatalf("second page of files: %+v, %v", files, err)
	}
	if files, err := idx.Files(ctx, relocatetest.ID(1), "x", 10); err != nil || len(files) != 0 {
		t.Fatalf("after the last file: %+v, %v", files, err)
	}
	if _, err := idx.Files(ctx, relocatetest.ID(99), "", 10); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("files of an unknown package: %v, want not found", err)
	}

	// The switch: durable, seen by serving at once, and after a reopen.
	if err := idx.SetLocation(ctx, relocatetest.ID(1), relocate.Location{Folder: "/t/" + ids[0]}); err != nil {
		t.Fatal(err)
	}
	if err := idx.SetLocation(ctx, relocatetest.ID(2), relocate.Location{Folder: "/b/store/" + ids[1], Link: "/t/" + ids[1]}); err != nil {
		t.Fatal(err)
	}
	if err := idx.SetLocation(ctx, relocatetest.ID(99), relocate.Location{Folder: "/t/x"}); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("set location of an unknown package: %v, want not found", err)
	}
	res, err := st.Resolve(ids[0], "x")
	if err != nil || res.Dir != "/t/"+ids[0] {
		t.Fatalf("resolve after the switch: %+v, %v", res, err)
	}
	if p, _ := st.Get(ids[0]); p.Root != "/t" || p.Path != "/t/"+ids[0] {
		t.Fatalf("package after the switch: root %s path %s", p.Root, p.Path)
	}
	st.Close()

	st = openStore(t, dbPath)
	if p, _ := st.Get(ids[0]); p.Root != "/t" || p.Path != "/t/"+ids[0] || p.State != api.StateReady {
		t.Fatalf("after reopen: %+v", p)
	}
	links, err := st.Links(ctx)
	if err != nil || !reflect.DeepEqual(links, map[string]string{ids[1]: "/t/" + ids[1]}) {
		t.Fatalf("links after reopen: %v, %v", links, err)
	}
	page, err := st.RelocationIndex().Packages(ctx, "", 10)
	if err != nil || len(page) < 2 || page[1].Link != "/t/"+ids[1] || page[1].Folder != "/b/store/"+ids[1] {
		t.Fatalf("linked package after reopen: %+v, %v", page, err)
	}
}

func TestIsCustom(t *testing.T) {
	skipUnixPaths(t)
	st := openStore(t, filepath.Join(t.TempDir(), "ps.db"))
	a, c := string(relocatetest.ID(1)), string(relocatetest.ID(2))
	putReady(t, st, a, "/a/store", map[string]int64{"x": 1}, "")
	putReady(t, st, c, "/custom", map[string]int64{"z": 7}, "/custom")
	if st.IsCustom(a) || !st.IsCustom(c) || st.IsCustom("nope") {
		t.Errorf("IsCustom: %v %v %v, want false true false", st.IsCustom(a), st.IsCustom(c), st.IsCustom("nope"))
	}
}

func TestRelocationJournal(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ps.db")
	st := openStore(t, path)
	j := st.RelocationJournal()
	e1 := relocate.Entry{Key: "p1", Kind: relocate.KindMove, Package: relocatetest.ID(1), Step: relocate.StepRename,
		Target: "/t", Source: "/a/p1", Dest: "/t/p1", Temp: "/t/.wharf-relocate/p1", Trash: "/a/.wharf-trash/p1"}
	e2 := relocate.Entry{Key: "leftover:/a/x", Kind: relocate.KindLeftover, Package: relocatetest.ID(2), Step: relocate.StepRemove, Path: "/a/x"}
	e0 := relocate.Entry{Key: "p0", Kind: relocate.KindLink, Package: relocatetest.ID(0), Step: relocate.StepLink, Source: "/a/p0", Dest: "/t/p0"}
	for _, e := range []relocate.Entry{e1, e2, e0} {
		if err := j.Begin(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Begin(ctx, e1); !errors.Is(err, wharf.ErrExists) {
		t.Fatalf("begin an open key: %v, want exists", err)
	}
	if err := j.Advance(ctx, "p1", relocate.StepCopy); err != nil {
		t.Fatal(err)
	}
	if err := j.Advance(ctx, "nope", relocate.StepCopy); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("advance an unknown key: %v, want not found", err)
	}
	if err := j.Close(ctx, "nope"); err != nil {
		t.Fatalf("close an unknown key: %v", err)
	}
	st.Close()

	st = openStore(t, path)
	j = st.RelocationJournal()
	got, err := j.List(ctx)
	e1.Step = relocate.StepCopy
	if err != nil || !reflect.DeepEqual(got, []relocate.Entry{e1, e2, e0}) {
		t.Fatalf("after reopen:\n got %+v, %v\nwant %+v", got, err, []relocate.Entry{e1, e2, e0})
	}
	if err := j.Close(ctx, "leftover:/a/x"); err != nil {
		t.Fatal(err)
	}
	// A closed key may begin again, and goes last.
	if err := j.Begin(ctx, e2); err != nil {
		t.Fatal(err)
	}
	got, _ = j.List(ctx)
	if len(got) != 3 || got[2].Key != e2.Key || got[0].Key != "p1" {
		t.Fatalf("order after close and begin: %+v", got)
	}
}

func TestRelocationStatePersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ps.db")
	st := openStore(t, path)
	if _, ok, err := st.LoadRelocationState(ctx); ok || err != nil {
		t.Fatalf("fresh DB: ok %v, err %v", ok, err)
	}
	want := store.RelocationState{StoragePath: "/s", From: "/f", Target: "/t", LastTried: "/t", Running: true, RunRetry: true, Mode: "exclusive",
		AttemptsDone: 2, LastStatus: wharf.RelocationSomeNotMoved | wharf.RelocationManual,
		LastAttempt: time.Unix(1700000000, 5).UTC(), LastMessage: wharf.RelocationWarning, NextRetry: time.Unix(1700000900, 0).UTC(),
		LastEvent: &api.LocationStatus{StoragePath: "/t", LastStatus: 2, LastStatusFlags: []string{"some-not-moved"}, AttemptsDone: 2, MaxAttempts: 3,
			LastAttempt: time.Unix(1700000000, 0).UTC()},
		EventSent: false}
	if err := st.SaveRelocationState(ctx, want); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openStore(t, path)
	got, ok, err := st.LoadRelocationState(ctx)
	if !ok || err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n got %+v (%v, %v)\nwant %+v", got, ok, err, want)
	}
}

// The relocation engine over the real state DB, crashed at every
// file-system operation of an attempt: the store is closed and opened again
// (the process restarted), Recover runs, then the attempt again; every
// package must end whole at the target, the index (and serving) naming it
// there, the journal closed. This is relocate's crash matrix with the SQLite
// index and journal in place of the in-memory ones.
func TestRelocationCrashMatrixOnStateDB(t *testing.T) {
	skipUnixPaths(t)
	const target = "/vol/b/store"
	type world struct {
		mem   *memfs.FS
		ffs   *faultfs.FS
		st    *store.Store
		path  string
		files map[wharf.PackageID][]wharf.File
	}
	dbDir := t.TempDir()
	if fi, err := filepath.Glob("/dev/shm"); err == nil && len(fi) == 1 {
		dbDir = filepath.Join("/dev/shm", strings.ReplaceAll(t.Name(), "/", "_")+fmt.Sprint(time.Now().UnixNano()))
		t.Cleanup(func() { removeAll(dbDir) })
	}
	build := func(t *testing.T, k int) *world {
		w := &world{mem: memfs.New(), files: map[wharf.PackageID][]wharf.File{}}
		w.ffs = faultfs.New(w.mem)
		w.path = filepath.Join(dbDir, fmt.Sprintf("ps-%d.db", k))
		removeAll(w.path + "*")
		w.st = openStore(t, w.path)
		for _, v := range []string{"/vol/a", "/vol/b", "/vol/c"} {
			if err := w.mem.AddVolume(v, memfs.Volume{}); err != nil {
				t.Fatal(err)
			}
		}
		roots := map[int]string{1: "/vol/a/Package Delivery", 2: "/vol/a/Package Delivery", 3: "/vol/c/Package Delivery", 4: "/vol/b/Package Delivery"}
		for _, r := range []string{"/vol/a/Package Delivery", "/vol/c/Package Delivery", "/vol/b/Package Delivery"} {
			if err := w.mem.WriteFile(filepath.Join(r, storeroot.MarkerName), []byte(`{"server":"ps"}`)); err != nil {
				t.Fatal(err)
			}
		}
		for n := 1; n <= 4; n++ {
			id := relocatetest.ID(n)
			content := map[string][]byte{}
			for i := range n + 1 {
				content[fmt.Sprintf("d%d/f%d", i%2, i)] = []byte(strings.Repeat(fmt.Sprintf("%d.%d ", n, i), 50*i+1))
			}
			manifest, err := relocatetest.WritePackage(w.mem, filepath.Join(roots[n], string(id)), content)
			if err != nil {
				t.Fatal(err)
			}
			w.files[id] = manifest
			p := store.Package{ID: string(id), Name: "p", Version: "1", Root: roots[n], Path: filepath.Join(roots[n], string(id)),
				State: api.StateDownloading}
			mt := map[string]time.Time{}
			for _, f := range manifest {
				p.Files = append(p.Files, store.File{File: f})
				p.Size += f.Size
				mt[f.Path] = time.Unix(1, 0)
			}
			if err := w.st.Put(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			if err := w.st.MarkReady(context.Background(), p.ID, mt, time.Unix(1, 0)); err != nil {
				t.Fatal(err)
			}
		}
		// Package 3 cannot leave its volume: linked.
		if err := w.mem.SetImmutable(filepath.Join(roots[3], string(relocatetest.ID(3)), "d0/f0"), true); err != nil {
			t.Fatal(err)
		}
		return w
	}
	facts := func(w *world) *volumetest.Fake {
		f := volumetest.New()
		for _, v := range []string{"/vol/a", "/vol/b", "/vol/c"} {
			info := volumetest.Disk(v, "ext4", 1<<30, 1<<29)
			info.DevID, _ = w.mem.Dev(v)
			f.Add(info)
		}
		return f
	}
	engine := func(t *testing.T, w *world, idx relocate.Index, j relocate.Journal) *relocate.Engine {
		e, err := relocate.New(relocate.Options{FS: w.ffs, Facts: facts(w), Index: idx, Journal: j, Server: "ps", Parallel: 1,
			PageSize: 2, FilePageSize: 2, KnownFolder: func(string) (bool, string) { return false, "" }})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	req := relocate.Request{Target: target, From: "/vol/a/Package Delivery"}
	check := func(t *testing.T, w *world, k int) {
		t.Helper()
		links, _ := w.st.Links(context.Background())
		for id, manifest := range w.files {
			p, ok := w.st.Get(string(id))
			if !ok {
				t.Fatalf("crash at %d: package %s gone from the index", k, id)
			}
			if err := relocatetest.VerifyPackage(w.mem, p.Path, manifest); err != nil {
				t.Errorf("crash at %d: package %s at %s: %v", k, id, p.Path, err)
			}
			dest := filepath.Join(target, string(id))
			if id == relocatetest.ID(3) {
				if links[string(id)] != dest {
					t.Errorf("crash at %d: package 3 link %q, want %s", k, links[string(id)], dest)
				}
				continue
			}
			if p.Path != dest || links[string(id)] != "" {
				t.Errorf("crash at %d: package %s at %s (link %q), want %s", k, id, p.Path, links[string(id)], dest)
			}
			for _, other := range []string{"/vol/a/Package Delivery", "/vol/b/Package Delivery", "/vol/c/Package Delivery"} {
				if _, err := w.mem.Lstat(filepath.Join(other, string(id))); err == nil {
					t.Errorf("crash at %d: package %s still at %s", k, id, other)
				}
			}
		}
		if open, _ := w.st.RelocationJournal().List(context.Background()); len(open) > 0 {
			t.Errorf("crash at %d: journal entries open: %+v", k, open)
		}
		if left := relocatetest.Find(w.mem, "/vol", storeroot.RelocateDir); len(left) > 0 {
			for _, d := range left {
				if es, _ := w.mem.ReadDir(d); len(es) > 0 {
					t.Errorf("crash at %d: temporary folder %s holds %d entries", k, d, len(es))
				}
			}
		}
	}

	// servable checks, before every file-system operation, that serving
	// finds every package whole: Resolve names its folder or, while it
	// moves, the folders its move passes through (Resolved.Also), and
	// one of them holds it, however long the disk takes between a rename
	// and the switch.
	servable := func(t *testing.T, w *world, when string) func(int, faultfs.Op, string) {
		failures := 0
		return func(n int, op faultfs.Op, path string) {
			for id, manifest := range w.files {
				res, err := w.st.Resolve(string(id), manifest[0].Path)
				if err != nil {
					t.Errorf("%s, before operation %d: resolve package %s: %v", when, n, id, err)
					continue
				}
				var errs []error
				found := false
				for _, d := range append([]string{res.Dir}, res.Also...) {
					if fi, err := w.mem.Lstat(d); err != nil || !fi.IsDir() {
						errs = append(errs, fmt.Errorf("%s: not a folder (%v)", d, err))
						continue
					}
					if err := relocatetest.VerifyPackage(w.mem, d, manifest); err != nil {
						errs = append(errs, err)
						continue
					}
					found = true
					break
				}
				if !found {
					if failures++; failures <= 3 {
						t.Errorf("%s, before operation %d (%s %s): package %s cannot be served: %v", when, n, op, path, id, errors.Join(errs...))
					}
				}
			}
		}
	}

	clean := build(t, -1)
	clean.ffs.Trace(servable(t, clean, "clean attempt"))
	res, err := engine(t, clean, clean.st.RelocationIndex(), clean.st.RelocationJournal()).Run(context.Background(), req)
	clean.ffs.Trace(nil)
	if err != nil || res.Status&^wharf.RelocationConsolidated != wharf.RelocationSomeNotMoved || res.Moved != 3 || res.Linked != 1 {
		t.Fatalf("clean run: %+v, %v", res, err)
	}
	check(t, clean, -1)
	n := clean.ffs.Ops()
	start := time.Now()
	for k := 0; k <= n; k++ {
		w := build(t, k)
		crashed := func() error {
			if w.ffs.Crashed() {
				return faultfs.ErrCrashed
			}
			return nil
		}
		w.ffs.Reset()
		w.ffs.CrashAt(k)
		_, _ = engine(t, w, crashIndex{w.st.RelocationIndex(), crashed}, crashJournal{w.st.RelocationJournal(), crashed}).
			Run(context.Background(), req)
		w.ffs.Reset()
		w.mem.Crash()
		w.st.Close()
		w.st = openStore(t, w.path) // the restart
		e := engine(t, w, w.st.RelocationIndex(), w.st.RelocationJournal())
		if err := e.Recover(context.Background()); err != nil {
			t.Fatalf("crash at %d: Recover: %v", k, err)
		}
		for id, manifest := range w.files {
			p, _ := w.st.Get(string(id))
			if err := relocatetest.VerifyPackage(w.mem, p.Path, manifest); err != nil {
				t.Errorf("crash at %d: after Recover package %s at %s: %v", k, id, p.Path, err)
			}
		}
		if k%8 == 0 {
			w.ffs.Trace(servable(t, w, fmt.Sprintf("attempt after a crash at %d", k)))
		}
		if _, err := e.Run(context.Background(), req); err != nil {
			t.Fatalf("crash at %d: Run after Recover: %v", k, err)
		}
		w.ffs.Trace(nil)
		check(t, w, k)
		w.st.Close()
		removeAll(w.path + "*")
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d crash points in %v", n+1, time.Since(start).Round(time.Millisecond))
}

// crashIndex and crashJournal make no more commits once the process
// "crashed".
type crashIndex struct {
	relocate.Index
	crashed func() error
}

func (c crashIndex) SetLocation(ctx context.Context, id wharf.PackageID, loc relocate.Location) error {
	if err := c.crashed(); err != nil {
		return err
	}
	return c.Index.SetLocation(ctx, id, loc)
}

func (c crashIndex) SetRoot(ctx context.Context, from, to string) (int, error) {
	if err := c.crashed(); err != nil {
		return 0, err
	}
	return c.Index.SetRoot(ctx, from, to)
}

type crashJournal struct {
	relocate.Journal
	crashed func() error
}

func (c crashJournal) Begin(ctx context.Context, e relocate.Entry) error {
	if err := c.crashed(); err != nil {
		return err
	}
	return c.Journal.Begin(ctx, e)
}

func (c crashJournal) Advance(ctx context.Context, key string, s relocate.Step) error {
	if err := c.crashed(); err != nil {
		return err
	}
	return c.Journal.Advance(ctx, key, s)
}

func (c crashJournal) Close(ctx context.Context, key string) error {
	if err := c.crashed(); err != nil {
		return err
	}
	return c.Journal.Close(ctx, key)
}

// removeAll removes every path matching pattern.
func removeAll(pattern string) {
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		_ = os.RemoveAll(m)
	}
}

// skipUnixPaths skips, on Windows, a test written with Unix paths over the
// in-memory fakes; the Windows run tests the state DB on real drives.
func skipUnixPaths(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("not a Windows test: Unix paths over the in-memory fakes")
	}
}

// TestSetRootSwitchesAWholeRoot: the switch of a root that moved whole
// rewrites every package's folder in one transaction (also for a root
// whose name is not ASCII), in the database and in what serving reads.
func TestSetRootSwitchesAWholeRoot(t *testing.T) {
	skipUnixPaths(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ps.db")
	st := openStore(t, path)
	from, to, other := "/vol/é/Package Delivery", "/vol/é/ständig/store", "/vol/c/Package Delivery"
	ids := []string{string(relocatetest.ID(1)), string(relocatetest.ID(2)), string(relocatetest.ID(3))}
	putReady(t, st, ids[0], from, map[string]int64{"a": 1}, "")
	putReady(t, st, ids[1], from, map[string]int64{"b/c": 2}, "")
	putReady(t, st, ids[2], other, map[string]int64{"d": 3}, "")
	// While the root's move is open, serving also looks in the new root.
	ent := relocate.Entry{Key: "root:" + from, Kind: relocate.KindRoot, Step: relocate.StepRename, Source: from, Dest: to, Target: to}
	if err := st.RelocationJournal().Begin(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Resolve(ids[1], "b/c"); err != nil || !slices.Contains(r.Also, filepath.Join(to, ids[1])) {
		t.Errorf("during the root's move: resolved %+v, %v; want %s among the folders", r, err, filepath.Join(to, ids[1]))
	}
	if r, _ := st.Resolve(ids[2], "d"); len(r.Also) != 0 {
		t.Errorf("a package of another root: also %v", r.Also)
	}
	n, err := st.RelocationIndex().SetRoot(ctx, from, to)
	if err != nil || n != 2 {
		t.Fatalf("SetRoot = %d, %v; want 2", n, err)
	}
	if n, err := st.RelocationIndex().SetRoot(ctx, from, to); err != nil || n != 0 {
		t.Fatalf("SetRoot again = %d, %v; want 0 (idempotent)", n, err)
	}
	check := func(st *store.Store, when string) {
		t.Helper()
		for i, id := range ids {
			want := filepath.Join(to, id)
			if i == 2 {
				want = filepath.Join(other, id)
			}
			p, ok := st.Get(id)
			if !ok || p.Path != want || p.Root != filepath.Dir(want) {
				t.Errorf("%s: package %d at %q (root %q), want %s", when, i+1, p.Path, p.Root, want)
			}
		}
		if r, err := st.Resolve(ids[1], "b/c"); err != nil || r.Dir != filepath.Join(to, ids[1]) {
			t.Errorf("%s: serving resolves to %q, %v", when, r.Dir, err)
		}
	}
	if err := st.RelocationJournal().Close(ctx, ent.Key); err != nil {
		t.Fatal(err)
	}
	check(st, "after SetRoot")
	if r, _ := st.Resolve(ids[1], "b/c"); len(r.Also) != 0 {
		t.Errorf("after the root's move: also %v", r.Also)
	}
	st.Close()
	check(openStore(t, path), "after a restart")
}
