package ps

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/volume/volumetest"
)

// While a relocation runs, the fetcher gets every stored package in its
// configuration, so an unassigned one is not removed from under the engine.
func TestKeepStoredKeepsEveryPackage(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []string{"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"} {
		if err := st.Put(context.Background(), store.Package{ID: id, Name: "n", Version: "1", Root: "/r", Path: "/r/" + id,
			State: api.StateReady, Size: 3, FileCount: 1, CustomLocation: ""}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := api.AgentConfig{Packages: []api.PackageSummary{{ID: "00000000-0000-4000-8000-000000000002"}, {ID: "00000000-0000-4000-8000-000000000003"}}}
	got := keepStored(cfg, st)
	ids := map[string]bool{}
	for _, p := range got.Packages {
		ids[p.ID] = true
	}
	if len(got.Packages) != 3 || !ids["00000000-0000-4000-8000-000000000001"] || !ids["00000000-0000-4000-8000-000000000003"] {
		t.Errorf("kept: %+v", got.Packages)
	}
	if len(cfg.Packages) != 2 {
		t.Errorf("the configuration given was changed: %+v", cfg.Packages)
	}
}

// In exclusive mode new placements wait until downloads resume.
func TestPausingPlacerWaits(t *testing.T) {
	facts := volumetest.New(volumetest.Disk("/vol", "ext4", 1<<30, 1<<29))
	p := &pausingPlacer{Rotating: place.NewRotating(place.Options{Primary: "/vol/store", Facts: facts})}
	p.pause()
	done := make(chan string, 1)
	go func() {
		root, err := p.Place(context.Background(), api.PackageSummary{ID: "x", Size: 1, FileCount: 1})
		if err != nil {
			t.Error(err)
		}
		done <- root
	}()
	select {
	case <-done:
		t.Fatal("placed while paused")
	case <-time.After(50 * time.Millisecond):
	}
	p.resume()
	if root := <-done; root != "/vol/store" {
		t.Errorf("placed in %s", root)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.pause()
	cancel()
	if _, err := p.Place(ctx, api.PackageSummary{ID: "y"}); err == nil {
		t.Error("a canceled placement while paused did not fail")
	}
}
