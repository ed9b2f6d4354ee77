package relocate_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"github.com/wharf-project/wharf/internal/wharf"
)

// fixedFacts reports every volume as fixed media: a loop device counts as
// fixed only when its image lies on fixed media, which a test machine's
// temp folder may not be (the fixed-media check has its own tests).
type fixedFacts struct{ volume.Facts }

func (f fixedFacts) Stat(path string) (volume.Info, error) {
	v, err := f.Facts.Stat(path)
	v.Fixed, v.FixedReason = true, ""
	return v, err
}

// TestRealVolumes relocates a store between two loop-mounted ext4 volumes
// with the real file system: a package with an immutable file (chattr +i)
// is linked, served through the symlink, and moved by a retry once the
// attribute is cleared.
func TestRealVolumes(t *testing.T) {
	loopfs.RequireRoot(t)
	volA := loopfs.Ext4(t, 64)
	volB := loopfs.Ext4(t, 64)
	osfs := fsys.OS{}
	from := filepath.Join(volA, "Package Delivery")
	if err := os.Mkdir(from, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(from, storeroot.MarkerName), []byte(`{"server":"`+server+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	index := relocatetest.NewIndex()
	journal := &relocatetest.Journal{}
	contents := map[wharf.PackageID]map[string][]byte{}
	rnd := rand.New(rand.NewPCG(1, 2))
	for n := range 5 {
		files := map[string][]byte{}
		for i := range 4 {
			b := make([]byte, 1000+rnd.IntN(300_000))
			for j := range b {
				b[j] = byte(rnd.UintN(256))
			}
			files[fmt.Sprintf("dir%d/file %d.bin", i%2, i)] = b
		}
		id := relocatetest.ID(n)
		folder := filepath.Join(from, string(id))
		manifest, err := relocatetest.WritePackage(osfs, folder, files)
		if err != nil {
			t.Fatal(err)
		}
		index.Add(relocate.Package{ID: id, Location: relocate.Location{Folder: folder}}, manifest)
		contents[id] = files
	}
	stuck := relocatetest.ID(2)
	stuckFile := filepath.Join(from, string(stuck), "dir0", "file 0.bin")
	if err := fsys.SetImmutable(stuckFile, true); err != nil {
		t.Fatalf("chattr +i: %v", err)
	}
	t.Cleanup(func() { _ = fsys.SetImmutable(stuckFile, false) }) // before the volume is unmounted

	engine := func() *relocate.Engine {
		e, err := relocate.New(relocate.Options{
			FS: osfs, Facts: fixedFacts{volume.New()}, Index: index, Journal: journal,
			Server: server, Log: nil, Parallel: 3,
		})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	target := filepath.Join(volB, "wharf", "store")
	r := relocate.Request{Target: target, From: from, Default: from, Reserve: relocate.Reserve{Percent: 5}}
	res, err := engine().Run(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != wharf.RelocationSomeNotMoved || res.Moved != 4 || res.Linked != 1 {
		t.Fatalf("status %s, moved %d, linked %d; plan %s", res.Status, res.Moved, res.Linked, res.Plan)
	}
	if r := res.NotMoved[0]; r.Package != stuck || r.Cause != relocate.CauseNotRemovable {
		t.Errorf("not moved: %+v", r)
	}
	verify := func() {
		t.Helper()
		for _, p := range index.All() {
			at := filepath.Join(target, string(p.ID))
			if p.Folder != at && p.Link != at {
				t.Errorf("package %s at %+v, not at %s", p.ID, p.Location, at)
			}
			for rel, want := range contents[p.ID] {
				// Served through the target path: the folder or the link.
				got, err := os.ReadFile(filepath.Join(at, filepath.FromSlash(rel)))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("package %s file %s: %d bytes, %v; want %d bytes, equal", p.ID, rel, len(got), err, len(want))
				}
			}
		}
		if es, _ := os.ReadDir(filepath.Join(target, storeroot.RelocateDir)); len(es) > 0 {
			t.Errorf("temporary folder holds %d entries", len(es))
		}
		if open := journal.Open(); len(open) > 0 {
			t.Errorf("journal entries open: %+v", open)
		}
	}
	verify()
	link := filepath.Join(target, string(stuck))
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s is %v, %v; want a symlink", link, fi, err)
	}
	for _, p := range index.All() {
		if p.ID != stuck {
			if _, err := os.Lstat(filepath.Join(from, string(p.ID))); !os.IsNotExist(err) {
				t.Errorf("package %s is still at the old location: %v", p.ID, err)
			}
		}
	}

	if err := fsys.SetImmutable(stuckFile, false); err != nil {
		t.Fatal(err)
	}
	r.From, r.Retry = target, true
	res, err = engine().Run(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != wharf.RelocationSuccess || res.Moved != 1 {
		t.Fatalf("retry: status %s, moved %d; %+v", res.Status, res.Moved, res.NotMoved)
	}
	verify()
	if fi, err := os.Lstat(link); err != nil || !fi.IsDir() {
		t.Fatalf("after the retry %s is %v, %v; want the real folder", link, fi, err)
	}
	if p, _ := index.Get(stuck); p.Folder != link || p.Link != "" {
		t.Errorf("index says %+v", p.Location)
	}
	if _, err := os.Lstat(filepath.Join(from, string(stuck))); !os.IsNotExist(err) {
		t.Errorf("the old folder is still there: %v", err)
	}
	if es, _ := os.ReadDir(filepath.Join(from, storeroot.TrashDir)); len(es) > 0 {
		t.Errorf("trash holds %d entries", len(es))
	}
	if err := engine().Recover(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Once more on the same volume: one rename per package.
	r = relocate.Request{Target: filepath.Join(volB, "again"), From: target, Default: from}
	res, err = engine().Run(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != wharf.RelocationSuccess || res.Plan.ByRename != 5 || res.BytesCopied != 0 {
		t.Fatalf("same-volume move: status %s, %d by rename, %d bytes copied", res.Status, res.Plan.ByRename, res.BytesCopied)
	}
	target = r.Target
	verify()
}
