//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"github.com/wharf-project/wharf/internal/wharf"
)

// adminClient is an API client for the NS env points at.
func adminClient(t testing.TB, env []string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(envValue(env, "WHARF_NS"), envValue(env, "WHARF_TOKEN"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// publishMany publishes n packages named prefix00000... in-process, eight
// at a time, assigned to every Package Server: package i has a file of
// random bytes for each size sizes(i) returns (every blob distinct), f.bin
// and then sub/f1.bin, sub/f2.bin... It returns them in order.
func publishMany(t testing.TB, env []string, prefix string, n int, sizes func(i int) []int) []pkgContent {
	t.Helper()
	c := adminClient(t, env)
	pkgs := make([]pkgContent, n)
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			files := map[string][]byte{}
			var list []api.File
			for j, size := range sizes(i) {
				rel := "f.bin"
				if j > 0 {
					rel = fmt.Sprintf("sub/f%d.bin", j)
				}
				b := make([]byte, size)
				rand.Read(b)
				sum := sha256.Sum256(b)
				d := hex.EncodeToString(sum[:])
				if err := c.PutBlob(ctx, wharf.Digest(d), bytes.NewReader(b), int64(size)); err != nil {
					return fmt.Errorf("upload a blob of package %d: %w", i, err)
				}
				files[rel] = b
				list = append(list, api.File{Path: rel, Size: int64(size), SHA256: d})
			}
			p, _, err := c.CreatePackage(ctx, api.PackageManifest{Name: fmt.Sprintf("%s%05d", prefix, i), Version: "1",
				Files: list, Assignment: api.Assignment{All: true}, Public: true}) // clients read it straight from the PS
			if err != nil {
				return fmt.Errorf("publish package %d: %w", i, err)
			}
			pkgs[i] = pkgContent{id: p.ID, files: files}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// waitAllReady waits until server reports at least n packages ready.
func waitAllReady(t testing.TB, env []string, server string, n int, timeout time.Duration) {
	t.Helper()
	c := adminClient(t, env)
	deadline := time.Now().Add(timeout)
	for {
		s, err := c.ServerPage(context.Background(), server, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		ready := s.PackageCounts[api.StateReady]
		if ready >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d packages ready on %s after %s", ready, n, server, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scaleClients are goroutines that download random files of random
// packages from a PS in a loop and count what they get. A request must
// answer 200 with the published bytes, except that one sent while
// exclusive is set may answer 503 with a Retry-After header.
type scaleClients struct {
	t         testing.TB
	psURL     string
	pkgs      []pkgContent
	rels      [][]string
	hc        *http.Client
	exclusive atomic.Bool

	requests, failures, unavailable, okExclusive atomic.Int64
	stop                                         chan struct{}
	wg                                           sync.WaitGroup
}

func startScaleClients(t testing.TB, psURL string, pkgs []pkgContent, n int) *scaleClients {
	c := &scaleClients{t: t, psURL: psURL, pkgs: pkgs, stop: make(chan struct{})}
	for _, p := range pkgs {
		c.rels = append(c.rels, slices.Sorted(maps.Keys(p.files)))
	}
	c.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for range n {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case <-c.stop:
					return
				default:
				}
				c.one()
			}
		}()
	}
	t.Cleanup(c.close)
	return c
}

func (c *scaleClients) one() {
	i := mrand.IntN(len(c.pkgs))
	p, rels := c.pkgs[i], c.rels[i]
	rel := rels[mrand.IntN(len(rels))]
	excl := c.exclusive.Load() // as the request is sent
	resp, err := c.hc.Get(c.psURL + "/packages/" + p.id + "/" + rel)
	c.requests.Add(1)
	if err != nil {
		c.fail("GET %s/%s: %v", p.id, rel, err)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err == nil && resp.StatusCode == 200 && bytes.Equal(body, p.files[rel]):
		if excl {
			c.okExclusive.Add(1)
		}
	case err == nil && resp.StatusCode == 503 && excl && resp.Header.Get("Retry-After") != "":
		c.unavailable.Add(1)
	default:
		c.fail("GET %s/%s (exclusive %v): %d, %d bytes, %v: %.200s", p.id, rel, excl, resp.StatusCode, len(body), err, body)
	}
}

func (c *scaleClients) fail(format string, args ...any) {
	if c.failures.Add(1) <= 10 {
		c.t.Errorf(format, args...)
	}
}

// close stops the clients and waits for them; it may be called again.
func (c *scaleClients) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.wg.Wait()
	c.hc.CloseIdleConnections()
}

// progressSeen is what polling a running attempt saw, at the NS or in
// `wharf ps status`.
type progressSeen struct {
	polls, running int  // polls, and those that showed the attempt running
	midway         bool // a progress with 0 < done < total, bytes and packages
	eta            bool // ... and an ETA
	movedPending   bool // per-package states with moved and pending ones
	maxMoved       int
}

// look records a running attempt's event: progress against the totals
// and the per-package states.
func (s *progressSeen) look(ev *api.LocationStatus, npkgs int, nbytes int64) {
	s.running++
	p := ev.Progress
	if p.PackagesTotal != npkgs || p.BytesTotal != nbytes {
		return
	}
	if 0 < p.PackagesDone && p.PackagesDone < p.PackagesTotal && 0 < p.BytesDone && p.BytesDone < p.BytesTotal {
		s.midway = true
		s.eta = s.eta || p.ETASeconds > 0
	}
	moved, pending := 0, 0
	if c := ev.PackageCounts; c != nil {
		moved, pending = c.Moved, c.Pending
	}
	s.maxMoved = max(s.maxMoved, moved)
	if moved > 0 && pending > 0 && moved+pending == npkgs {
		s.movedPending = true
	}
}

func (s progressSeen) String() string {
	return fmt.Sprintf("%d polls, %d running; progress midway %v, with an ETA %v; moved and pending packages %v (most moved seen %d)",
		s.polls, s.running, s.midway, s.eta, s.movedPending, s.maxMoved)
}

// checkAllMoved checks that an event ending an attempt toward target
// lists every package, each moved there or linked with a reason.
func checkAllMoved(t *testing.T, who string, ev *api.LocationStatus, target string, pkgs []pkgContent) {
	t.Helper()
	if c := ev.PackageCounts; c == nil || c.Moved+c.Linked != len(pkgs) || c.Failed+c.Pending != 0 {
		t.Errorf("%s: package counts %+v after the relocation of %d packages to %s", who, ev.PackageCounts, len(pkgs), target)
	}
	if len(pkgs) > api.MaxEventPackages {
		// The event lists only the packages that did not move.
		for _, p := range ev.Packages {
			if p.State != api.RelocationLinked || p.Reason == "" {
				t.Errorf("%s: package %+v listed after the relocation to %s", who, p, target)
			}
		}
		if ev.PackagesOmitted+len(ev.Packages) != len(pkgs) {
			t.Errorf("%s: %d packages listed and %d omitted, want %d in all", who, len(ev.Packages), ev.PackagesOmitted, len(pkgs))
		}
		return
	}
	want := map[string]bool{}
	for _, p := range pkgs {
		want[p.id] = true
	}
	bad := 0
	for _, p := range ev.Packages {
		ok := want[p.PackageID] && (p.State == api.RelocationMoved && p.Path == filepath.Join(target, p.PackageID) ||
			p.State == api.RelocationLinked && p.Reason != "")
		if !ok {
			if bad++; bad <= 5 {
				t.Errorf("%s: package %+v after the relocation to %s", who, p, target)
			}
		}
		delete(want, p.PackageID)
	}
	if len(want) != 0 || bad != 0 {
		t.Errorf("%s: %d packages missing from the final event, %d not moved", who, len(want), bad)
	}
}

// packagesIn counts the package folders and links in a store root.
func packagesIn(root string) int {
	es, _ := os.ReadDir(root)
	n := 0
	for _, e := range es {
		if _, err := wharf.ParsePackageID(e.Name()); err == nil {
			n++
		}
	}
	return n
}

// TestRelocationAtScale is issue 7's test at scale: a PS with 2,500
// packages relocates its store from one loop-mounted ext4 volume to another
// (a copy, throttled by relocation.bandwidth so it lasts about 16 s) while
// clients download random package files in a loop: not one request fails.
// Meanwhile `wharf server show --json` and `wharf ps status --json` show the
// progress (bytes and packages done of total, an ETA) and per-package
// states, moved and pending; the final event lists every package moved.
// Then, in exclusive mode, a relocation on the target volume (by rename):
// the clients get 503 with Retry-After during it, and 200 after it.
func TestRelocationAtScale(t *testing.T) {
	loopfs.RequireRoot(t)
	dir := t.TempDir()
	volA := loopfs.Ext4(t, 256)
	volB := loopfs.Ext4(t, 256)
	requireFixedLoops(t, volA)
	_, _, env := startNS(t, filepath.Join(dir, "ns"), "")

	// Tiny packages: one file of 16 KiB, every fourth a second one of
	// 4 KiB in a subfolder. Published before the PS starts, which then
	// downloads them 16 at a time.
	const npkgs = 2500
	t0 := time.Now()
	pkgs := publishMany(t, env, "scale", npkgs, func(i int) []int {
		if i%4 == 0 {
			return []int{16 << 10, 4 << 10}
		}
		return []int{16 << 10}
	})
	var nbytes int64
	for _, p := range pkgs {
		for _, b := range p.files {
			nbytes += int64(len(b))
		}
	}
	conc := 16
	if _, err := adminClient(t, env).SetSiteServerPolicy(context.Background(), "", api.SiteServerSettings{DownloadConcurrency: &conc}); err != nil {
		t.Fatal(err)
	}
	installDir := filepath.Join(volA, "wharf")
	cfg := writeConfig(t, dir, "[relocation]\nbandwidth = \""+scaleBandwidth+"\"\n")
	_, psURL := startPS(t, env, "ps1", installDir, "--config", cfg)
	waitAllReady(t, env, "ps1", npkgs, 2*time.Minute)
	t.Logf("%d packages (%.1f MiB) published and downloaded by the PS in %s", npkgs, float64(nbytes)/(1<<20), time.Since(t0).Round(time.Millisecond))

	clients := startScaleClients(t, psURL, pkgs, 4)

	// Online, across volumes: watch the NS and ps status until the
	// attempt's end reaches the NS.
	target := filepath.Join(volB, "store")
	since := setLocation(t, env, "ps1", target)
	var atNS, atPS progressSeen
	var final *api.LocationStatus
	for deadline := time.Now().Add(2 * time.Minute); final == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("the relocation to %s did not end within 2 minutes; NS: %s; ps status: %s", target, atNS, atPS)
		}
		var s api.Server
		mustJSON(t, env, &s, "server", "show", "ps1")
		atNS.polls++
		if ls := s.LocationStatus; ls != nil && ls.StoragePath == target && !ls.LastAttempt.Before(since) {
			switch {
			case ls.Progress != nil:
				atNS.look(ls, npkgs, nbytes)
			case !wharf.RelocationStatus(ls.LastStatus).Has(wharf.RelocationInProgress):
				final = ls
				continue
			}
		}
		st := psStatus(t, env, installDir)
		atPS.polls++
		if r := st.Relocation; r != nil && r.Running && r.Target == target && r.Event != nil && r.Event.Progress != nil {
			atPS.look(r.Event, npkgs, nbytes)
		}
	}
	elapsed := final.ReceivedAt.Sub(final.LastAttempt)
	t.Logf("online relocation of %d packages to %s: %s in %s (%.2f MiB/s at a limit of %s); %d requests, %d failed",
		npkgs, target, wharf.RelocationStatus(final.LastStatus), elapsed.Round(time.Millisecond),
		float64(nbytes)/(1<<20)/elapsed.Seconds(), scaleBandwidth, clients.requests.Load(), clients.failures.Load())
	t.Logf("progress at the NS: %s", atNS)
	t.Logf("progress in ps status: %s", atPS)
	if got := wharf.RelocationStatus(final.LastStatus); got != wharf.RelocationSuccess {
		t.Fatalf("relocation to %s: %s %s", target, got, final.Message)
	}
	for who, s := range map[string]progressSeen{"wharf server show": atNS, "wharf ps status": atPS} {
		if !s.midway || !s.eta || !s.movedPending {
			t.Errorf("%s during the relocation: %s", who, s)
		}
	}
	checkAllMoved(t, "wharf server show", final, target, pkgs)
	if r := psStatus(t, env, installDir).Relocation; r == nil || r.Running || r.Event == nil || r.Event.Progress != nil || r.StoragePath != target {
		t.Errorf("ps status after the relocation: %+v", r)
	} else {
		checkAllMoved(t, "wharf ps status", r.Event, target, pkgs)
	}
	if clients.failures.Load() != 0 || clients.requests.Load() < 100 {
		t.Errorf("online relocation: %d of %d requests failed", clients.failures.Load(), clients.requests.Load())
	}

	// Exclusive, on the target volume: renames, 503 while they run.
	if r := run(t, env, "policy", "set", "--server", "ps1", "--relocation-mode", "exclusive"); r.code != 0 {
		t.Fatalf("policy set --relocation-mode exclusive: %s", r.stderr)
	}
	n0, f0 := clients.requests.Load(), clients.failures.Load()
	clients.exclusive.Store(true)
	final2 := filepath.Join(volB, "exclusive")
	since = setLocation(t, env, "ps1", final2)
	ev := waitAttempt(t, env, "ps1", final2, since, time.Minute)
	clients.exclusive.Store(false) // the end reached the NS after serving was restored: 200 only from now on
	n1 := clients.requests.Load()
	time.Sleep(time.Second)
	clients.close()
	n2 := clients.requests.Load()
	t.Logf("exclusive relocation to %s: %s in %s; %d requests during it: %d answered 503 with Retry-After, %d served, %d failed; %d requests after it",
		final2, wharf.RelocationStatus(ev.LastStatus), ev.ReceivedAt.Sub(ev.LastAttempt).Round(time.Millisecond),
		n1-n0, clients.unavailable.Load(), clients.okExclusive.Load(), clients.failures.Load()-f0, n2-n1)
	if got := wharf.RelocationStatus(ev.LastStatus); got != wharf.RelocationSuccess {
		t.Errorf("exclusive relocation to %s: %s %s", final2, got, ev.Message)
	}
	checkAllMoved(t, "exclusive relocation", &ev, final2, pkgs)
	if clients.unavailable.Load() == 0 || n2-n1 < 10 || clients.failures.Load() != 0 {
		t.Errorf("exclusive relocation: %d answers 503, %d requests after it, %d failed requests in all", clients.unavailable.Load(), n2-n1, clients.failures.Load())
	}
	for _, p := range pkgs {
		verifyAt(t, filepath.Join(final2, p.id), p)
	}
	for _, old := range []string{filepath.Join(installDir, "Package Delivery"), target} {
		if n := packagesIn(old); n != 0 {
			t.Errorf("%d packages left in %s", n, old)
		}
	}
	t.Logf("%d requests in all, %d failed", clients.requests.Load(), clients.failures.Load())
}

// scaleBandwidth stretches TestRelocationAtScale's copy of about 41 MiB to
// some 16 s. With more than api.MaxEventPackages packages an event carries
// the counts of moved and pending packages and only the rows of those that
// did not move.
const scaleBandwidth = "2.5MiB/s"

// TestRelocationThrottle checks relocation.bandwidth: 24 MiB of packages
// relocated across two loop-mounted ext4 volumes at a limit of 8 MiB/s
// must go at 0.7 to 1.3 times the limit, measured as the bytes over the
// time from the attempt's start (the event's last_attempt, stamped by the
// PS) to its end (the NS's received_at of the event that ended it).
func TestRelocationThrottle(t *testing.T) {
	loopfs.RequireRoot(t)
	dir := t.TempDir()
	volA := loopfs.Ext4(t, 96)
	volB := loopfs.Ext4(t, 96)
	requireFixedLoops(t, volA)
	_, _, env := startNS(t, filepath.Join(dir, "ns"), "")
	const limit, bandwidth = 8 << 20, "8MiB/s"
	pkgs := publishMany(t, env, "throttle", 12, func(int) []int { return []int{1 << 20, 1 << 20} })
	var nbytes int64
	for _, p := range pkgs {
		for _, b := range p.files {
			nbytes += int64(len(b))
		}
	}
	installDir := filepath.Join(volA, "wharf")
	cfg := writeConfig(t, dir, "[relocation]\nbandwidth = \""+bandwidth+"\"\n")
	startPS(t, env, "ps1", installDir, "--config", cfg)
	waitAllReady(t, env, "ps1", len(pkgs), time.Minute)

	target := filepath.Join(volB, "store")
	since := setLocation(t, env, "ps1", target)
	ev := waitAttempt(t, env, "ps1", target, since, time.Minute)
	if got := wharf.RelocationStatus(ev.LastStatus); got != wharf.RelocationSuccess {
		t.Fatalf("relocation to %s: %s %s", target, got, ev.Message)
	}
	checkAllMoved(t, "throttled relocation", &ev, target, pkgs)
	elapsed := ev.ReceivedAt.Sub(ev.LastAttempt)
	rate := float64(nbytes) / elapsed.Seconds()
	ratio := rate / limit
	t.Logf("throttled relocation: %.0f MiB across volumes in %s: %.2f MiB/s at a limit of %s, ratio %.3f",
		float64(nbytes)/(1<<20), elapsed.Round(time.Millisecond), rate/(1<<20), bandwidth, ratio)
	if ratio < 0.7 || ratio > 1.3 {
		t.Errorf("copy rate %.2f MiB/s is %.3f times relocation.bandwidth %s, want 0.7 to 1.3", rate/(1<<20), ratio, bandwidth)
	}
	for _, p := range pkgs {
		verifyAt(t, filepath.Join(target, p.id), p)
	}
}
