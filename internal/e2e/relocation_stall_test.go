//go:build linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"github.com/wharf-project/wharf/internal/wharf"
)

// stallFor is how long each stall holds the state DB's write lock: longer
// than serving's bounded retry of a missing folder (about 4 s) and the
// requests made during it, shorter than the PS's busy timeout (10 s).
const stallFor = 8 * time.Second

// TestRelocationWithStalledCommits is issue 17's test: a PS with 5,000
// packages relocates its store online on the same volume (a rename per
// package) while clients download random files in a loop, and the disk is
// slowed where it hurts: up to three times during the relocation another
// process (sqlite3) holds the state DB's write lock for 8 s, so packages
// renamed to their new folder wait that long for their switch in the index
// — longer than serving's old bounded retry of a missing folder (about 4
// s). At the start of each stall every package found in the target folder
// is requested (the ones between rename and switch among them). Not one
// request may fail, and every package must end whole at the target. With
// serving's resolution of moving packages turned off, the requests during
// a stall answer 404.
func TestRelocationWithStalledCommits(t *testing.T) {
	loopfs.RequireRoot(t)
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatal("sqlite3 is missing (Debian package sqlite3; scripts/test-setup.sh installs it)")
	}
	vol := loopfs.Ext4(t, 384)
	requireFixedLoops(t, vol)
	// The NS's data on a tmpfs: its fsyncs are not what this test is about,
	// and publishing 5,000 packages goes faster without them.
	_, _, env := startNS(t, filepath.Join(loopfs.Tmpfs(t, 512), "ns"), "")

	const npkgs = 5000
	t0 := time.Now()
	pkgs := publishMany(t, env, "stall", npkgs, func(i int) []int {
		if i%4 == 0 {
			return []int{1 << 10, 512}
		}
		return []int{1 << 10}
	})
	conc := 16
	if _, err := adminClient(t, env).SetSiteServerPolicy(context.Background(), "", api.SiteServerSettings{DownloadConcurrency: &conc}); err != nil {
		t.Fatal(err)
	}
	installDir := filepath.Join(vol, "wharf")
	_, psURL := startPS(t, env, "ps1", installDir)
	waitAllReady(t, env, "ps1", npkgs, 6*time.Minute)
	t.Logf("%d packages published and downloaded by the PS in %s", npkgs, time.Since(t0).Round(time.Millisecond))

	clients := startScaleClients(t, psURL, pkgs, 4)
	byID := map[string]pkgContent{}
	for _, p := range pkgs {
		byID[p.id] = p
	}
	target := filepath.Join(vol, "moved")
	db := filepath.Join(installDir, "state", "ps.db")

	stallCtx, endStalls := context.WithCancel(context.Background())
	var stalls, probes, probeFailures atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the slow disk
		defer wg.Done()
		seen := 0
		for range 3 {
			// Wait for the relocation to move on since the last stall.
			for packagesIn(target) <= seen {
				select {
				case <-stallCtx.Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			held := make(chan struct{})
			cmd := exec.Command(sqlite3, "-cmd", ".timeout 20000", db)
			cmd.Stdin = strings.NewReader(fmt.Sprintf("BEGIN IMMEDIATE;\n.print held\n.shell sleep %d\nROLLBACK;\n", int(stallFor.Seconds())))
			out, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Errorf("start sqlite3: %v", err)
				return
			}
			go func() {
				buf := make([]byte, 16)
				if n, _ := out.Read(buf); n > 0 {
					close(held)
				}
				io.Copy(io.Discard, out)
			}()
			select {
			case <-held:
			case <-time.After(30 * time.Second):
				t.Errorf("sqlite3 did not get the write lock of %s", db)
			}
			stalls.Add(1)
			// Packages renamed into the target and waiting for their
			// switch: request one file of each at once, so that serving's
			// old bounded retry (about 4 s) would run out well within the
			// stall.
			time.Sleep(300 * time.Millisecond)
			es, _ := os.ReadDir(target)
			work := make(chan pkgContent)
			var pw sync.WaitGroup
			for range 16 {
				pw.Add(1)
				go func() {
					defer pw.Done()
					for p := range work {
						rels := slices.Sorted(maps.Keys(p.files))
						probes.Add(1)
						resp, err := clients.hc.Get(psURL + "/packages/" + p.id + "/" + rels[0])
						if err != nil {
							probeFailures.Add(1)
							t.Errorf("GET %s during a stall: %v", p.id, err)
							continue
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 || string(body) != string(p.files[rels[0]]) {
							if probeFailures.Add(1) <= 5 {
								t.Errorf("GET %s/%s during a stall: %d %.200s", p.id, rels[0], resp.StatusCode, body)
							}
						}
					}
				}()
			}
			for _, e := range es {
				if p, ok := byID[e.Name()]; ok {
					work <- p
				}
			}
			close(work)
			pw.Wait()
			if err := cmd.Wait(); err != nil {
				t.Errorf("sqlite3: %v", err)
			}
			seen = packagesIn(target)
		}
	}()

	// Somebody else's file in the store root keeps it from moving as one
	// root (one rename and one commit for the lot): the packages move one
	// by one, each renamed and then switched, the case the stalls are for.
	if err := os.WriteFile(filepath.Join(installDir, "Package Delivery", "notes.txt"), []byte("not Wharf's"), 0o644); err != nil {
		t.Fatal(err)
	}
	since := setLocation(t, env, "ps1", target)
	ev := waitAttempt(t, env, "ps1", target, since, 4*time.Minute)
	endStalls()
	wg.Wait()
	clients.close()
	elapsed := ev.ReceivedAt.Sub(ev.LastAttempt)
	t.Logf("online relocation of %d packages on one volume with %d stalls of %s: %s in %s; %d client requests, %d failed; %d requests of packages in the target during the stalls, %d failed",
		npkgs, stalls.Load(), stallFor, wharf.RelocationStatus(ev.LastStatus), elapsed.Round(time.Millisecond),
		clients.requests.Load(), clients.failures.Load(), probes.Load(), probeFailures.Load())
	if got := wharf.RelocationStatus(ev.LastStatus); got != wharf.RelocationSuccess {
		t.Fatalf("relocation to %s: %s %s", target, got, ev.Message)
	}
	// A store that is one root on the volume moves whole (one rename, one
	// switch): a single stall then spans the whole time between them.
	if stalls.Load() < 1 {
		t.Errorf("no stall happened during the relocation")
	}
	if clients.failures.Load() != 0 || probeFailures.Load() != 0 || clients.requests.Load() < 100 {
		t.Errorf("%d of %d client requests and %d of %d requests during the stalls failed",
			clients.failures.Load(), clients.requests.Load(), probeFailures.Load(), probes.Load())
	}
	for _, p := range pkgs {
		verifyAt(t, filepath.Join(target, p.id), p)
	}
	if n := packagesIn(filepath.Join(installDir, "Package Delivery")); n != 0 {
		t.Errorf("%d packages left in the old store", n)
	}
}
