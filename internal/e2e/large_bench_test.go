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
	mrand "math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"github.com/wharf-project/wharf/internal/wharf"
)

// BenchmarkLargeStore is issue 17's benchmark: one Package Server holding
// WHARF_LARGE_N small packages (default 100,000; each 2 files of 1 to 4
// KiB, every blob distinct), published directly through the API (blobs
// and manifests, 16 at a time), then downloaded by the PS. It reports:
//
//   - the PS's download rate over the first and the last 10 % of the
//     packages, and their ratio (goal: last ≥ 0.8 × first);
//   - the restart time (SIGTERM, then a new process until the first 200 of
//     a package file; goal < 2 s) and the PS's and NS's RSS;
//   - the time of `wharf ps status`, `wharf server show`, `wharf server
//     ls` and of every console page (median of 5; goal < 100 ms);
//   - a same-volume and a cross-volume online relocation of the whole
//     store while 4 clients download random files in a loop: duration and
//     failed requests (goal 0).
//
// The PS's install dir and both relocation targets are on loop-mounted XFS
// volumes (dynamic inodes); the NS's data is on a tmpfs. Root only; `make
// bench` runs it.
func BenchmarkLargeStore(b *testing.B) {
	loopfs.RequireRoot(b)
	n := 100_000
	if v := os.Getenv("WHARF_LARGE_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("WHARF_LARGE_N=%q: want a count of packages, 100 or more", v)
		}
	}
	for i := 0; i < b.N; i++ {
		runLargeStore(b, n)
	}
}

func runLargeStore(b *testing.B, n int) {
	volA := loopfs.XFS(b, 8192)
	volB := loopfs.XFS(b, 8192)
	requireFixedLoops(b, volA)
	// The NS's data (SQLite and blobs) on a tmpfs: its fsyncs are not
	// what this benchmark measures, and they would make publishing 100,000
	// packages take an hour on a shared disk.
	nsData := loopfs.Tmpfs(b, 4096)
	nsProc, nsURL, env := startNS(b, filepath.Join(nsData, "ns"), "")
	report := &largeReport{n: n}

	t0 := time.Now()
	pkgs := publishSmall(b, env, n)
	report.publish = time.Since(t0)
	b.Logf("published %d packages through the API in %s", n, report.publish.Round(time.Millisecond))

	conc := 16
	if _, err := adminClient(b, env).SetSiteServerPolicy(context.Background(), "", api.SiteServerSettings{DownloadConcurrency: &conc}); err != nil {
		b.Fatal(err)
	}
	installDir := filepath.Join(volA, "wharf")
	ps, psURL := startPS(b, env, "ps1", installDir)
	addr := strings.TrimPrefix(psURL, "http://")
	adm := admin.NewClient(admin.SocketPath(installDir))

	// Downloads: the ready count over time.
	type sample struct {
		at    time.Time
		ready int
	}
	var samples []sample
	began := time.Now()
	for deadline := began.Add(3 * time.Hour); ; {
		st, err := adm.StatusWith(context.Background(), 0)
		if err != nil {
			b.Fatal(err)
		}
		ready := st.States[api.StateReady]
		samples = append(samples, sample{time.Now(), ready})
		if ready >= n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d packages ready after %s", ready, n, time.Since(began))
		}
		time.Sleep(250 * time.Millisecond)
	}
	at := func(k int) time.Time { // first sample with at least k ready
		i := sort.Search(len(samples), func(i int) bool { return samples[i].ready >= k })
		return samples[i].at
	}
	tenth := n / 10
	report.firstRate = float64(tenth) / at(tenth).Sub(at(1)).Seconds()
	report.lastRate = float64(n-(n-tenth)) / at(n).Sub(at(n-tenth)).Seconds()
	report.download = at(n).Sub(began)
	for d := 1; d <= 10; d++ {
		lo, hi := max(1, (d-1)*n/10), d*n/10
		report.deciles = append(report.deciles, float64(hi-lo)/at(hi).Sub(at(lo)).Seconds())
	}
	report.psRSS = rssMiB(ps.cmd.Process.Pid)
	report.nsRSS = rssMiB(nsProc.cmd.Process.Pid)

	// Restart.
	if err := ps.stop(b); err != nil {
		b.Logf("ps stop: %v", err)
	}
	probe := psURL + "/packages/" + pkgs[n/2].id + "/f0.bin"
	t1 := time.Now()
	ps, _ = start(b, nil, nil, append([]string{"ps", "serve", "--install-dir", installDir, "--addr", addr}, "--ns", nsURL)...)
	for {
		resp, err := http.Get(probe)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Since(t1) > 2*time.Minute {
			b.Fatalf("no 200 from the restarted PS within 2 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	report.restart = time.Since(t1)
	time.Sleep(2 * time.Second) // settled after the restart
	report.psRSSRestart = rssMiB(ps.cmd.Process.Pid)

	// Status commands and console pages.
	report.times = map[string]time.Duration{}
	timeIt := func(name string, fn func()) {
		var ds []time.Duration
		for range 5 {
			t := time.Now()
			fn()
			ds = append(ds, time.Since(t))
		}
		slices.Sort(ds)
		report.times[name] = ds[len(ds)/2]
		report.order = append(report.order, name)
	}
	cli := func(args ...string) func() {
		return func() {
			if r := run(b, env, args...); r.code != 0 {
				b.Fatalf("wharf %s: %s", strings.Join(args, " "), r.stderr)
			}
		}
	}
	timeIt("wharf ps status", cli("ps", "status", "--install-dir", installDir))
	timeIt("wharf server show ps1", cli("server", "show", "ps1"))
	timeIt("wharf server ls", cli("server", "ls"))
	timeIt("wharf package ls", cli("package", "ls"))
	hc := consoleLogin(b, nsURL, envValue(env, "WHARF_TOKEN"))
	for _, page := range []string{"/", "/packages", "/packages?q=large0999", "/packages/" + pkgs[n/3].id, "/servers", "/servers/ps1",
		"/servers/ps1/status.json", "/settings", "/alerts"} {
		timeIt("console "+page, func() {
			resp, err := hc.Get(nsURL + page)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("console %s: %d %.200s", page, resp.StatusCode, body)
			}
			report.sizes = append(report.sizes, fmt.Sprintf("%s %d bytes", page, len(body)))
		})
	}

	// Relocations under client load.
	clients := startScaleClients(b, psURL, pkgs, 4)
	for _, rc := range []struct{ name, target string }{
		{"same volume", filepath.Join(volA, "moved")},
		{"cross volume", filepath.Join(volB, "store")},
	} {
		r0, f0 := clients.requests.Load(), clients.failures.Load()
		since := setLocation(b, env, "ps1", rc.target)
		ev := waitAttempt(b, env, "ps1", rc.target, since, 2*time.Hour)
		report.relocs = append(report.relocs, fmt.Sprintf("%s: %s in %s; %d client requests during it, %d failed",
			rc.name, wharf.RelocationStatus(ev.LastStatus), ev.ReceivedAt.Sub(ev.LastAttempt).Round(time.Millisecond),
			clients.requests.Load()-r0, clients.failures.Load()-f0))
		if got := wharf.RelocationStatus(ev.LastStatus); got != wharf.RelocationSuccess {
			b.Errorf("%s relocation: %s %s", rc.name, got, ev.Message)
		}
	}
	clients.close()
	report.failed = clients.failures.Load()
	report.print(b)
}

type largeReport struct {
	n                          int
	publish, download, restart time.Duration
	firstRate, lastRate        float64
	deciles                    []float64
	psRSS, psRSSRestart, nsRSS int
	times                      map[string]time.Duration
	order, sizes, relocs       []string
	failed                     int64
}

func (r *largeReport) print(b *testing.B) {
	ratio := r.lastRate / r.firstRate
	fmt.Printf("BenchmarkLargeStore N=%d: publish %s, PS download %s\n", r.n, r.publish.Round(time.Millisecond), r.download.Round(time.Millisecond))
	fmt.Printf("  download rate first 10%%: %.0f packages/s, last 10%%: %.0f packages/s, ratio last/first %.2f (goal >= 0.80)\n",
		r.firstRate, r.lastRate, ratio)
	var ds []string
	for _, d := range r.deciles {
		ds = append(ds, fmt.Sprintf("%.0f", d))
	}
	fmt.Printf("  download rate by tenth of the packages (packages/s): %s\n", strings.Join(ds, " "))
	fmt.Printf("  restart to first 200: %s (goal < 2s, ratio to goal %.2f)\n", r.restart.Round(time.Millisecond), r.restart.Seconds()/2)
	fmt.Printf("  RSS: PS %d MiB after the downloads, %d MiB after the restart; NS %d MiB\n", r.psRSS, r.psRSSRestart, r.nsRSS)
	for _, name := range r.order {
		d := r.times[name]
		fmt.Printf("  %-40s %7.1f ms (ratio to the 100 ms goal %.2f)\n", name, float64(d.Microseconds())/1000, d.Seconds()/0.1)
	}
	for _, s := range r.relocs {
		fmt.Printf("  relocation %s\n", s)
	}
	b.ReportMetric(ratio, "last/first-rate")
	b.ReportMetric(r.restart.Seconds(), "restart-s")
	b.ReportMetric(float64(r.failed), "failed-requests")
}

// publishSmall publishes n packages of two small files each (1 to 4 KiB,
// every blob distinct), named large00000..., assigned to every server,
// straight through the API, 16 at a time.
func publishSmall(b *testing.B, env []string, n int) []pkgContent {
	c := adminClient(b, env)
	pkgs := make([]pkgContent, n)
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			files := map[string][]byte{}
			var list []api.File
			for j := range 2 {
				data := make([]byte, 1024+mrand.IntN(3*1024))
				rand.Read(data)
				sum := sha256.Sum256(data)
				d := hex.EncodeToString(sum[:])
				if err := c.PutBlob(ctx, wharf.Digest(d), bytes.NewReader(data), int64(len(data))); err != nil {
					return fmt.Errorf("blob of package %d: %w", i, err)
				}
				rel := fmt.Sprintf("f%d.bin", j)
				files[rel] = data
				list = append(list, api.File{Path: rel, Size: int64(len(data)), SHA256: d})
			}
			p, _, err := c.CreatePackage(ctx, api.PackageManifest{Name: fmt.Sprintf("large%06d", i), Version: "1",
				Files: list, Assignment: api.Assignment{All: true}, Public: true}) // clients read it straight from the PS
			if err != nil {
				return fmt.Errorf("publish package %d: %w", i, err)
			}
			pkgs[i] = pkgContent{id: p.ID, files: files}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return pkgs
}

// consoleLogin returns an HTTP client logged in to the NS console with the
// admin token.
func consoleLogin(b *testing.B, nsURL, token string) *http.Client {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	resp, err := hc.Get(nsURL + "/login")
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		b.Fatalf("console login page has no CSRF field")
	}
	resp, err = hc.PostForm(nsURL+"/login", url.Values{"csrf": {string(m[1])}, "secret": {token}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("console login: %d", resp.StatusCode)
	}
	return hc
}

// rssMiB is the resident set size of process pid in MiB (0 if unknown).
func rssMiB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb / 1024
		}
	}
	return 0
}
