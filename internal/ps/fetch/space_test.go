package fetch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/fetch"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// placer is a fetch.Placer and fetch.Ledger whose decision a test sets
// (default: the env's primary location) and that records every call.
type placer struct {
	mu     sync.Mutex
	decide func(api.PackageSummary) (string, error)
	calls  []string // "place <id> <size>", "hold <id> <root>", "release <id>"
}

var (
	_ fetch.Placer = (*placer)(nil)
	_ fetch.Ledger = (*placer)(nil)
)

func (p *placer) Place(_ context.Context, pkg api.PackageSummary) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, fmt.Sprintf("place %s %d/%d", pkg.ID, pkg.Size, pkg.FileCount))
	return p.decide(pkg)
}

func (p *placer) Hold(pkg api.PackageSummary, root string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, fmt.Sprintf("hold %s %d/%d %s", pkg.ID, pkg.Size, pkg.FileCount, root))
}

func (p *placer) Release(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "release "+id)
}

func (p *placer) set(decide func(api.PackageSummary) (string, error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.decide = decide
}

func (p *placer) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func newPlacer(root string) *placer {
	return &placer{decide: func(api.PackageSummary) (string, error) { return root, nil }}
}

func TestLedgerHoldAndRelease(t *testing.T) {
	e := newEnv(t)
	pl := newPlacer(e.root)
	e.placer = pl
	files := map[string][]byte{"a": randBytes(1000), "d/b": randBytes(2000)}
	p := e.ns.AddPackage("p", "1", files)
	// The summary of the configuration lies about the size: the placer
	// must see the manifest's.
	cfg, _, _, err := e.client.AgentConfig(context.Background(), psName, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Packages[0].Size, cfg.Packages[0].FileCount = 1, 1
	e.start()
	e.f.Apply(cfg, false)
	e.waitState(p.ID, api.StateReady)
	waitFor(t, "release", func() bool { return len(pl.Calls()) == 2 })
	want := []string{"place " + p.ID + " 3000/2", "release " + p.ID}
	if got := pl.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls: got %q, want %q", got, want)
	}

	// A download that resumes after a restart is held, not placed again.
	slowFiles := map[string][]byte{"slow": randBytes(1 << 20)}
	slow := e.ns.AddPackage("slow", "1", slowFiles)
	d := nstest.Sum(slowFiles["slow"])
	e.ns.SetRate(512<<10, d)
	e.apply(false)
	waitFor(t, "slow download under way", func() bool { return e.ns.BytesSent(d) > 0 })
	e.stop()
	e.ns.SetRate(0)
	pl2 := newPlacer(e.root)
	e.placer = pl2
	e.restart()
	e.apply(false)
	e.waitState(slow.ID, api.StateReady)
	waitFor(t, "release", func() bool { return len(pl2.Calls()) == 2 })
	want = []string{fmt.Sprintf("hold %s %d/1 %s", slow.ID, 1<<20, e.root), "release " + slow.ID}
	if got := pl2.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls after the restart: got %q, want %q", got, want)
	}
}

// A package that found no room is not tried again in a loop, but at once
// when the settings change or a removal freed space.
func TestNoSpaceIsRetriedWhenSettingsChangeOrSpaceIsFreed(t *testing.T) {
	e := newEnv(t)
	pl := newPlacer(e.root)
	e.placer = pl
	full := func(pkg api.PackageSummary) (string, error) {
		return "", wharf.Errorf(wharf.ErrNoSpace, "not enough space on /fake: need %d", pkg.Size)
	}
	other := e.ns.AddPackage("other", "1", map[string][]byte{"o": []byte("o")})
	e.start()
	e.apply(false)
	e.waitState(other.ID, api.StateReady)

	pl.set(full)
	p := e.ns.AddPackage("p", "1", map[string][]byte{"f": []byte("data")})
	e.apply(false)
	st := e.waitState(p.ID, api.StateFailed)
	if !strings.Contains(st.Reason, "not enough space on /fake") || st.Path != "" {
		t.Errorf("reported %+v, want the placer's reason and no path", st)
	}
	if _, err := os.Stat(filepath.Join(e.root, storeroot.DownloadDir, p.ID)); !os.IsNotExist(err) {
		t.Errorf("temp folder of a package that found no room: %v", err)
	}
	places := func() int {
		n := 0
		for _, c := range pl.Calls() {
			if strings.HasPrefix(c, "place "+p.ID) {
				n++
			}
		}
		return n
	}
	// The same configuration again: the backoff holds.
	for range 3 {
		e.apply(false)
	}
	time.Sleep(100 * time.Millisecond)
	if n := places(); n != 1 {
		t.Fatalf("placements with unchanged settings: got %d, want 1", n)
	}

	// Settings change: tried again at once (and fails again).
	e.ns.SetSettings(api.AgentSettings{PollWaitSeconds: 30, DownloadConcurrency: 4, AllFixedDrives: true})
	e.apply(false)
	waitFor(t, "a new attempt after the settings changed", func() bool { return places() == 2 })

	// A removal frees space: tried again at once, and now it fits.
	pl.set(func(api.PackageSummary) (string, error) { return e.root, nil })
	e.ns.Unassign(other.ID)
	e.apply(false)
	e.waitState(p.ID, api.StateReady)
	if n := places(); n != 3 {
		t.Errorf("placements: got %d, want 3", n)
	}
}

// A download that runs out of disk space on a real volume is discarded,
// temp folder and all, and placed again on its next attempt.
func TestDownloadOutOfSpaceIsDiscarded(t *testing.T) {
	small := loopfs.Ext4(t, 8)
	roomy := loopfs.Ext4(t, 32)
	e := newEnv(t)
	smallRoot, roomyRoot := filepath.Join(small, "Package Delivery"), filepath.Join(roomy, "Package Delivery")
	pl := newPlacer(smallRoot) // places without looking at free space
	e.placer = pl
	files := map[string][]byte{"big.bin": randBytes(12 << 20), "small.txt": []byte("small")}
	p := e.ns.AddPackage("big", "1", files)
	e.start()
	e.apply(false)
	st := e.waitState(p.ID, api.StateFailed)
	for _, s := range []string{"not enough space in " + smallRoot, "no space left on device", "partial download was removed"} {
		if !strings.Contains(st.Reason, s) {
			t.Errorf("reason %q: want it to contain %q", st.Reason, s)
		}
	}
	if _, ok := e.st.Get(p.ID); ok {
		t.Error("the state DB still has the package that ran out of space")
	}
	noTemp(t, smallRoot)
	if entries, _ := os.ReadDir(filepath.Join(smallRoot, storeroot.DownloadDir)); len(entries) != 0 {
		t.Errorf("temp folder not empty: %v", entries)
	}
	if _, err := os.Lstat(filepath.Join(smallRoot, p.ID)); !os.IsNotExist(err) {
		t.Errorf("package folder on the full volume: %v", err)
	}
	if fl := e.f.Failures(); len(fl) != 1 || fl[0].Package.ID != p.ID {
		t.Errorf("failures: got %+v", fl)
	}

	pl.set(func(api.PackageSummary) (string, error) { return roomyRoot, nil })
	e.apply(true)
	st = e.waitState(p.ID, api.StateReady)
	if want := filepath.Join(roomyRoot, p.ID); st.Path != want {
		t.Errorf("path: got %q, want %q", st.Path, want)
	}
	checkPackage(t, filepath.Join(roomyRoot, p.ID), files)
	noTemp(t, roomyRoot)
	if got := pl.Calls(); len(got) != 4 || !strings.HasPrefix(got[2], "place "+p.ID) {
		t.Errorf("calls: got %q, want place, release, place, release", got)
	}
}
