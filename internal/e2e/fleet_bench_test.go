package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/fleetsim"
	"github.com/wharf-project/wharf/internal/testenv/pgtest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// BenchmarkFleet runs the fleet simulator (package fleetsim) against a real
// `wharf ns serve`: N simulated Package Servers enroll and long-poll; it
// prints the NS's idle RSS and CPU, the latency from an admin change to
// each poller receiving it for a global policy change and a publish, and
// how many other polls an enrollment woke. Each figure is printed with its
// ratio to the goal of issue 11 and next to a reference measured in the
// same run (the same change reaching a single poller). Sizes and databases
// come from WHARF_FLEET_N (default 1000,10000) and WHARF_FLEET_DB (default
// sqlite,postgres); `make bench` runs it with the open-file limit raised.
// WHARF_FLEET_NS_BIN runs another wharf binary as the NS (a baseline).
func BenchmarkFleet(b *testing.B) {
	sizes := []int{1000, 10000}
	if v := os.Getenv("WHARF_FLEET_N"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("WHARF_FLEET_N=%q: want sizes like 1000,10000", v)
			}
			sizes = append(sizes, n)
		}
	}
	dbs := []string{"sqlite", "postgres"}
	if v := os.Getenv("WHARF_FLEET_DB"); v != "" {
		dbs = strings.Split(v, ",")
	}
	for _, db := range dbs {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/N=%d", db, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					runFleet(b, db, n)
				}
			})
		}
	}
}

func runFleet(b *testing.B, db string, n int) {
	// The simulator shares the machine with the NS it measures: a less
	// eager garbage collector in the simulator (not in the NS) leaves the
	// NS more of it.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	dsn := ""
	switch db {
	case "sqlite":
	case "postgres":
		dsn = pgtest.DSN(b)
	default:
		b.Fatalf("database %q: want sqlite or postgres", db)
	}
	if bin := os.Getenv("WHARF_FLEET_NS_BIN"); bin != "" {
		// Another build of wharf for the NS (an older one, as a baseline);
		// the simulator is this tree's.
		own := wharfBin
		wharfBin = bin
		defer func() { wharfBin = own }()
	}
	nsProc, url, env := startNS(b, b.TempDir(), dsn)
	token := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "WHARF_TOKEN="); ok {
			token = v
		}
	}
	fleet, err := fleetsim.New(url, token, n+16)
	if err != nil {
		b.Fatal(err)
	}
	defer fleet.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	admin := fleet.Admin()

	// The reference: one poller alone receives a policy change.
	if err := fleet.Add(ctx, "ref", 1, 1); err != nil {
		b.Fatal(err)
	}
	concurrency := 4
	setConcurrency := func(ctx context.Context) error {
		concurrency++
		_, err := admin.SetSiteServerPolicy(ctx, "", api.SiteServerSettings{DownloadConcurrency: &concurrency})
		return err
	}
	hasConcurrency := func(cfg api.AgentConfig) bool { return cfg.Settings.DownloadConcurrency == concurrency }
	ref, err := fleet.Measure(ctx, 30*time.Second, hasConcurrency, setConcurrency)
	if err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	if err := fleet.Add(ctx, "ps", n-1, 32); err != nil {
		b.Fatalf("enroll %d package servers: %v", n, err)
	}
	enrolled := time.Since(start)
	// Idle: every poller waits with its ETag; let the first answers' round
	// trips end, then measure a whole poll period.
	time.Sleep(5 * time.Second)
	cpu0, err := procCPU(nsProc.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	const idleWindow = 30 * time.Second
	time.Sleep(idleWindow)
	cpu1, _ := procCPU(nsProc.cmd.Process.Pid)
	idleCPU := float64(cpu1-cpu0) / float64(time.Since(t0))
	rss, err := procRSS(nsProc.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}

	pid := nsProc.cmd.Process.Pid
	var policyCPU, publishCPU [2]time.Duration // the NS's, the simulator's
	measured := func(cpu *[2]time.Duration, f func() (fleetsim.Latency, error)) (fleetsim.Latency, error) {
		ns0, _ := procCPU(pid)
		sim0, _ := procCPU(os.Getpid())
		l, err := f()
		ns1, _ := procCPU(pid)
		sim1, _ := procCPU(os.Getpid())
		cpu[0], cpu[1] = ns1-ns0, sim1-sim0
		return l, err
	}
	policy, err := measured(&policyCPU, func() (fleetsim.Latency, error) {
		return fleet.Measure(ctx, 60*time.Second, hasConcurrency, setConcurrency)
	})
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second)

	content := []byte("fleet simulator package\n")
	sum := sha256.Sum256(content)
	d := wharf.Digest(hex.EncodeToString(sum[:]))
	if err := admin.PutBlob(ctx, d, bytes.NewReader(content), int64(len(content))); err != nil {
		b.Fatal(err)
	}
	publish, err := measured(&publishCPU, func() (fleetsim.Latency, error) {
		return fleet.Measure(ctx, 60*time.Second, func(cfg api.AgentConfig) bool {
			return slices.ContainsFunc(cfg.Packages, func(p api.PackageSummary) bool { return p.Name == "fleet-sim" })
		}, func(ctx context.Context) error {
			_, _, err := admin.CreatePackage(ctx, api.PackageManifest{Name: "fleet-sim", Version: "1",
				Assignment: api.Assignment{All: true}, Files: []api.File{{Path: "readme.txt", Size: int64(len(content)), SHA256: string(d)}}})
			return err
		})
	})
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	woken, answers, enrollTook, err := fleet.EnrollCost(ctx, "late", 3*time.Second)
	if err != nil {
		b.Fatal(err)
	}

	// Idle again with a 60 s poll interval (a global change all pollers
	// receive, then a whole poll period): what a fleet pays at rest is
	// one HTTP exchange per poller and poll interval.
	sixty := 60
	if _, err := fleet.Measure(ctx, 60*time.Second, func(cfg api.AgentConfig) bool { return cfg.Settings.PollWaitSeconds == sixty },
		func(ctx context.Context) error {
			_, err := admin.SetSiteServerPolicy(ctx, "", api.SiteServerSettings{PollIntervalSeconds: &sixty})
			return err
		}); err != nil {
		b.Fatal(err)
	}
	time.Sleep(35 * time.Second) // the last polls of the 30 s period end
	cpu0, _ = procCPU(pid)
	t0 = time.Now()
	time.Sleep(60 * time.Second)
	cpu1, _ = procCPU(pid)
	idleCPU60 := float64(cpu1-cpu0) / float64(time.Since(t0))

	mib := float64(rss) / (1 << 20)
	fmt.Printf("fleet %s N=%d (enrolled in %s):\n", db, fleet.Size()-1, enrolled.Round(time.Second))
	fmt.Printf("  idle NS: RSS %.0f MiB (%.2f of the 1 GiB goal), CPU %.1f%% of a core (%.2f of the 5%% goal) at the default 30 s poll interval, %.1f%% at 60 s\n",
		mib, mib/1024, 100*idleCPU, idleCPU/0.05, 100*idleCPU60)
	for _, m := range []struct {
		name string
		l    fleetsim.Latency
		cpu  [2]time.Duration
	}{{"global policy change", policy, policyCPU}, {"publish to all", publish, publishCPU}} {
		fmt.Printf("  %s: reached %d/%d (%d within 1 s), p50 %s p99 %s max %s (p99 %.2f of the 1 s goal; %.1f× the reference %s to 1 poller); CPU until all had it: NS %s, simulator %s%s\n",
			m.name, m.l.Reached, m.l.N, m.l.WithinOneS, ms(m.l.P50), ms(m.l.P99), ms(m.l.Max),
			m.l.P99.Seconds(), float64(m.l.P99)/float64(max(ref.P99, time.Millisecond)), ms(ref.P99), ms(m.cpu[0]), ms(m.cpu[1]), missing(m.l))
	}
	wokeText := fmt.Sprintf("woke %d other polls (goal 0)", woken)
	if woken < 0 {
		wokeText = "woke an unknown number of other polls (this NS has no GET /stats)"
	}
	fmt.Printf("  enrollment while %d poll: %s, %d other pollers got a new configuration; enrolled and first config in %s\n",
		n, wokeText, answers, ms(enrollTook))
	b.ReportMetric(mib, "idle-RSS-MiB")
	b.ReportMetric(100*idleCPU, "idle-CPU-%")
	b.ReportMetric(100*idleCPU60, "idle-CPU-60s-%")
	b.ReportMetric(float64(policy.P99.Milliseconds()), "policy-p99-ms")
	b.ReportMetric(float64(publish.P99.Milliseconds()), "publish-p99-ms")
	b.ReportMetric(float64(woken), "enroll-wakes")
	fleet.Close()
	nsProc.stop(b)
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func missing(l fleetsim.Latency) string {
	if len(l.Missing) == 0 {
		return ""
	}
	return fmt.Sprintf("; NOT REACHED in time: %d, e.g. %s", l.N-l.Reached, strings.Join(l.Missing, ", "))
}

// procCPU returns the user+system CPU time a process used.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which ends with the last ')'.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck, nil
}

// procRSS returns a process's resident set size in bytes.
func procRSS(pid int) (int64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
