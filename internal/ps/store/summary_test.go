//go:build !windows

// Unix paths ("/a/store"): not a Windows test.

package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/wharf"
)

// TestSummaryAndPagesFollowEveryChange: the counts the store keeps by root
// (Summary, Roots, HasPackagesIn, UsesRoot) and the pages in name order
// equal what a full listing says, after random puts, state changes,
// switches (with links), deletions, a root going unavailable, and a reopen.
func TestSummaryAndPagesFollowEveryChange(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ps.db")
	st := openStore(t, path)
	roots := []string{"/a/store", "/b/store", "/c/custom"}
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []string
	check := func(when string) {
		t.Helper()
		all := st.List()
		want := store.Summary{States: map[string]int{}}
		byRoot := map[string]*store.RootSummary{}
		links := map[string]bool{}
		for _, p := range all {
			r := byRoot[p.Root]
			if r == nil {
				r = &store.RootSummary{Root: p.Root, States: map[string]int{}, Unavailable: st.RootUnavailable(p.Root)}
				byRoot[p.Root] = r
			}
			r.Packages++
			r.Bytes += p.Size
			r.States[p.State]++
			r.Custom = r.Custom || p.CustomLocation != ""
			if p.Link != "" {
				r.Linked++
				links[filepath.Dir(p.Link)] = true
			}
			state, _ := p.Reported()
			want.States[state]++
			want.Packages++
		}
		for _, r := range roots {
			if r := byRoot[r]; r != nil {
				want.Roots = append(want.Roots, *r)
			}
		}
		got := st.Summary()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Summary\n%+v\nwant\n%+v", when, got, want)
		}
		var wantRoots []string
		for _, r := range want.Roots {
			wantRoots = append(wantRoots, r.Root)
		}
		if got := st.Roots(); !reflect.DeepEqual(got, wantRoots) && len(got)+len(wantRoots) > 0 {
			t.Fatalf("%s: Roots %v, want %v", when, got, wantRoots)
		}
		for _, r := range append(roots, "/elsewhere") {
			if got, want := st.HasPackagesIn(r), byRoot[r] != nil; got != want {
				t.Fatalf("%s: HasPackagesIn(%s) = %v", when, r, got)
			}
			if got, want := st.UsesRoot(r), byRoot[r] != nil || links[r]; got != want {
				t.Fatalf("%s: UsesRoot(%s) = %v", when, r, got)
			}
		}
		var paged []string
		for after := ""; ; {
			page, next, err := st.Page(ctx, after, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page {
				paged = append(paged, p.ID)
			}
			if next == "" {
				break
			}
			after = next
		}
		var listed []string
		for _, p := range all {
			listed = append(listed, p.ID)
		}
		if !reflect.DeepEqual(paged, listed) {
			t.Fatalf("%s: pages %v, want %v", when, paged, listed)
		}
	}
	for i := range 60 {
		root := roots[rng.IntN(len(roots))]
		id := string(wharf.NewPackageID())
		p := store.Package{ID: id, Name: fmt.Sprintf("p%02d", rng.IntN(20)), Version: fmt.Sprint(rng.IntN(3)), Root: root,
			Path: filepath.Join(root, id), State: api.StateDownloading, Size: int64(i * 10), FileCount: 1,
			Files: []store.File{{File: wharf.File{Path: "f", Size: int64(i * 10), SHA256: wharf.Digest(fmt.Sprintf("%064x", i))}}}}
		if root == "/c/custom" {
			p.CustomLocation = root
		}
		if err := st.Put(ctx, p); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		switch rng.IntN(4) {
		case 0:
			if err := st.MarkReady(ctx, id, map[string]time.Time{"f": time.Unix(1, 0)}, time.Unix(2, 0)); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := st.SetState(ctx, id, api.StateFailed, "no", time.Unix(3, 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("after puts")
	idx := st.RelocationIndex()
	for _, id := range ids[:20] {
		to := roots[rng.IntN(2)]
		loc := relocate.Location{Folder: filepath.Join(to, id)}
		if rng.IntN(2) == 0 {
			loc.Link = filepath.Join("/d/target", id)
		}
		if err := idx.SetLocation(ctx, wharf.PackageID(id), loc); err != nil {
			t.Fatal(err)
		}
	}
	check("after switches")
	for _, id := range ids[20:35] {
		if err := st.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	check("after deletions")
	st.SetRootAvailable("/b/store", false, "gone")
	check("with a root unavailable")
	st.SetRootAvailable("/b/store", true, "")
	// Put again replaces: the counts of the old one go.
	p, _ := st.Get(ids[40])
	p.Root, p.Path, p.Size = "/a/store", filepath.Join("/a/store", p.ID), 12345
	if err := st.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	check("after a replacing put")
	before := st.Summary()
	st.Close()
	st = openStore(t, path)
	if got := st.Summary(); !reflect.DeepEqual(got, before) {
		t.Fatalf("after reopen: %+v, want %+v", got, before)
	}
	check("after reopen")
}
