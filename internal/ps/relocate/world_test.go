//go:build !windows

// Unix paths over the in-memory fakes: not run on Windows, where the
// *_windows_test.go files test the same behaviour on real drives.

package relocate_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/clock/clocktest"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/ps/volume/volumetest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// The world of the unit tests: three volumes in memory, /vol/a holding the
// default location, /vol/b an empty data disk, /vol/c a disk that took
// rotated packages.
const (
	volA     = "/vol/a"
	volB     = "/vol/b"
	volC     = "/vol/c"
	defLoc   = "/vol/a/Package Delivery"
	rotLoc   = "/vol/c/Package Delivery"
	server   = "ps-test"
	gib      = 1 << 30
	volTotal = 100 * gib
)

type world struct {
	t       testing.TB
	mem     *memfs.FS
	ffs     *faultfs.FS
	facts   *volumetest.Fake
	index   *relocatetest.Index
	journal *relocatetest.Journal
	clock   *clocktest.Instant
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, mem: memfs.New(), facts: volumetest.New(), index: relocatetest.NewIndex(),
		journal: &relocatetest.Journal{}, clock: clocktest.NewInstant()}
	w.ffs = faultfs.New(w.mem)
	for _, v := range []string{volA, volB, volC} {
		if err := w.mem.AddVolume(v, memfs.Volume{}); err != nil {
			t.Fatal(err)
		}
		dev, _ := w.mem.Dev(v)
		info := volumetest.Disk(v, "ext4", volTotal, volTotal/2)
		info.DevID = dev
		w.facts.Add(info)
	}
	root := volumetest.Disk("/", "ext4", volTotal, volTotal/2)
	root.DevID = 1
	w.facts.Add(root)
	for _, r := range []string{defLoc, rotLoc} {
		if err := w.mem.WriteFile(filepath.Join(r, storeroot.MarkerName), []byte(`{"server":"`+server+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// engine returns an engine over the world; opts change the options.
func (w *world) engine(opts ...func(*relocate.Options)) *relocate.Engine {
	w.t.Helper()
	o := relocate.Options{
		FS: w.ffs, Facts: w.facts, Index: w.index, Journal: w.journal, Server: server,
		Clock: w.clock, Parallel: 1, RenameParallel: 1, PageSize: 2, FilePageSize: 2,
		KnownFolder: func(p string) (bool, string) {
			for _, k := range []string{"/etc", "/usr"} {
				if p == k || strings.HasPrefix(p, k+"/") {
					return true, k
				}
			}
			return p == "/", "/"
		},
	}
	for _, f := range opts {
		f(&o)
	}
	e, err := relocate.New(o)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// add writes package n with nfiles files into root and indexes it.
func (w *world) add(n int, root string, nfiles int) relocate.Package {
	w.t.Helper()
	files := map[string][]byte{}
	for i := range nfiles {
		name := fmt.Sprintf("f%d.bin", i)
		if i%2 == 1 {
			name = fmt.Sprintf("sub/dir%d/f%d.txt", i, i)
		}
		files[name] = []byte(strings.Repeat(fmt.Sprintf("package %d file %d\n", n, i), 10*(i+1)))
	}
	id := relocatetest.ID(n)
	folder := filepath.Join(root, string(id))
	manifest, err := relocatetest.WritePackage(w.mem, folder, files)
	if err != nil {
		w.t.Fatal(err)
	}
	w.index.Add(relocate.Package{ID: id, Location: relocate.Location{Folder: folder}}, manifest)
	p, _ := w.index.Get(id)
	return p
}

func (w *world) run(e *relocate.Engine, req relocate.Request) *relocate.Result {
	w.t.Helper()
	res, err := e.Run(context.Background(), req)
	if err != nil {
		w.t.Fatalf("Run(%s): %v", req.Target, err)
	}
	return res
}

func req(target string) relocate.Request {
	return relocate.Request{Target: target, From: defLoc, Default: defLoc, Reserve: relocate.Reserve{Percent: 5}}
}

// snapshot describes every file, folder and link of the memfs and the
// index, to tell whether anything changed.
func (w *world) snapshot() string {
	w.t.Helper()
	var b strings.Builder
	_ = fsys.WalkLstat(w.mem, "/", func(p string, fi fs.FileInfo) error {
		switch {
		case fsys.IsLink(fi):
			t, _ := w.mem.Readlink(p)
			fmt.Fprintf(&b, "%s -> %s\n", p, t)
		case fi.IsDir():
			fmt.Fprintf(&b, "%s/\n", p)
		default:
			data, _ := w.mem.ReadFile(p)
			fmt.Fprintf(&b, "%s %x\n", p, sha256.Sum256(data))
		}
		return nil
	})
	for _, p := range w.index.All() {
		fmt.Fprintf(&b, "index %s %s %s\n", p.ID, p.Folder, p.Link)
	}
	for _, e := range w.journal.Open() {
		fmt.Fprintf(&b, "journal %s %s\n", e.Key, e.Step)
	}
	return b.String()
}

// check verifies the invariants of a finished relocation: every package
// readable with its digests at the one place the index says (plus its link,
// if any), nowhere else; no temporary folder, empty trash; journal closed.
func (w *world) check(target string) {
	w.t.Helper()
	for _, p := range w.index.All() {
		files := w.index.FileList(p.ID)
		if err := relocatetest.VerifyPackage(w.mem, p.Folder, files); err != nil {
			w.t.Errorf("package %s at %s: %v", p.ID, p.Folder, err)
		}
		want := []string{p.Folder}
		if p.Link != "" {
			want = append(want, p.Link)
			if got, err := w.mem.Readlink(p.Link); err != nil || got != p.Folder {
				w.t.Errorf("package %s: link %s -> %q, %v; want %s", p.ID, p.Link, got, err, p.Folder)
			}
			if err := relocatetest.VerifyPackage(w.mem, p.Link, files); err != nil {
				w.t.Errorf("package %s through its link: %v", p.ID, err)
			}
		}
		if !p.Custom && target != "" {
			if at := filepath.Join(target, string(p.ID)); p.Folder != at && p.Link != at {
				w.t.Errorf("package %s is at %s (link %q), not at the target %s", p.ID, p.Folder, p.Link, at)
			}
		}
		slices.Sort(want)
		if got := relocatetest.Find(w.mem, "/", string(p.ID)); !slices.Equal(got, want) {
			w.t.Errorf("package %s found at %q, want only %q", p.ID, got, want)
		}
	}
	if got := relocatetest.Find(w.mem, "/", storeroot.RelocateDir); len(got) > 0 {
		w.t.Errorf("temporary folders left: %q", got)
	}
	for _, tr := range relocatetest.Find(w.mem, "/", storeroot.TrashDir) {
		if es, _ := w.mem.ReadDir(tr); len(es) > 0 {
			w.t.Errorf("trash %s holds %d entries", tr, len(es))
		}
	}
	if open := w.journal.Open(); len(open) > 0 {
		w.t.Errorf("journal entries left open: %+v", open)
	}
}

func wantStatus(t testing.TB, res *relocate.Result, want wharf.RelocationStatus) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("status = %s, want %s (plan: %v)", res.Status, want, res.Plan)
	}
}

var _ = volume.Info{}

func diskAt(root string, dev uint64) volume.Info {
	info := volumetest.Disk(root, "ext4", volTotal, volTotal/2)
	info.DevID = dev
	return info
}
