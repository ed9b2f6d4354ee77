//go:build !windows

// Unix paths over the in-memory file system; the loop-volume test of the
// same audit, unmounting a real volume, is e2e.TestLinkAuditOnLoopVolumes.

package linkaudit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock/clocktest"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
	"github.com/wharf-project/wharf/internal/ps/linkaudit"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/testenv/promtext"
)

const (
	target = "/vol/a/store"            // where the store moved; the links are here
	old    = "/vol/b/Package Delivery" // where the linked packages stayed
	other  = "/vol/c/Package Delivery" // a rotated root
)

func TestAudit(t *testing.T) {
	mem := memfs.New()
	for _, v := range []string{"/vol/a", "/vol/b", "/vol/c"} {
		if err := mem.AddVolume(v, memfs.Volume{}); err != nil {
			t.Fatal(err)
		}
	}
	roots := storeroot.New(mem, "ps1", clocktest.NewInstant())
	for _, r := range []string{target, old, other} {
		if err := roots.Prepare(r); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(n int, root string, linked bool) store.Package {
		t.Helper()
		id := string(relocatetest.ID(n))
		p := store.Package{ID: id, Name: "p", Version: "1", Root: root, Path: filepath.Join(root, id), State: api.StateReady}
		if linked {
			p.Link = filepath.Join(target, id)
		}
		if err := mem.MkdirAll(p.Path); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sound := put(1, old, true)
	noLink := put(2, old, true)
	stale := put(3, old, true)
	gone := put(4, old, true)
	put(5, target, false) // at its place: not audited
	for _, p := range []store.Package{sound, gone} {
		if err := mem.Symlink(p.Path, p.Link); err != nil {
			t.Fatal(err)
		}
	}
	// The stale link leads to where the package was before it drifted.
	if err := mem.Symlink(filepath.Join(other, stale.ID), stale.Link); err != nil {
		t.Fatal(err)
	}
	if err := mem.RemoveAll(gone.Path); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	reported := make(chan api.LinkAudit, 10)
	clk := clocktest.NewManual()
	a, err := linkaudit.New(linkaudit.Options{Index: st, FS: mem, Markers: roots, Registry: reg, Clock: clk,
		OnAudit: func(au api.LinkAudit) { reported <- au }})
	if err != nil {
		t.Fatal(err)
	}
	if a.Latest() != nil {
		t.Fatal("an audit before any ran")
	}
	au := a.Audit(context.Background())
	want := map[string]string{noLink.ID: api.LinkMissing, stale.ID: api.LinkStale, gone.ID: api.LinkTargetMissing}
	if au.Links != 4 || len(au.Problems) != len(want) {
		t.Fatalf("audit: %d links, problems %+v; want 4 links, %d problems", au.Links, au.Problems, len(want))
	}
	for _, p := range au.Problems {
		if want[p.PackageID] != p.Kind || p.Detail == "" || p.Link == "" || p.Folder == "" {
			t.Errorf("problem %+v, want kind %q", p, want[p.PackageID])
		}
	}

	// The volume of the old root is unmounted: its marker is gone (the
	// fetcher marks the root unavailable; the audit does not wait for it).
	if err := mem.RemoveAll(filepath.Join(old, storeroot.MarkerName)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	au = <-reported // the audit on start
	if got := a.Latest(); got == nil || got.Counts[api.LinkTargetUnavailable] != 4 || len(got.Counts) != 1 {
		t.Errorf("after the old root's marker went: %+v, want 4 target-unavailable", got)
	}
	fams := promtext.Gather(t, reg)
	if v, _ := fams.Value("wharf_ps_link_problems", "kind", api.LinkTargetUnavailable); v != 4 {
		t.Errorf("wharf_ps_link_problems{kind=target-unavailable} = %v, want 4", v)
	}
	// The volume is back: the next audit, an interval later, is clean but
	// for the real problems.
	if err := mem.WriteFile(filepath.Join(old, storeroot.MarkerName), []byte(`{"server":"ps1"}`)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); clk.Waiting() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the auditor does not wait for its next audit")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Advance(time.Hour)
	if again := <-reported; len(again.Problems) != len(want) {
		t.Errorf("audit after the volume came back: %+v", again.Problems)
	}
	a.Poke()
	<-reported // a poke audits at once
	cancel()
	<-done
}
