//go:build linux

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/testenv/promtext"
)

// TestMetricsOfRealProcesses scrapes a real `wharf ns serve` and `wharf ps
// serve`, both with --metrics-addr, after a publish and a relocation
// attempt, parses both with the Prometheus client library's parser, and
// checks that every metric the Grafana dashboard of docs/grafana uses is
// one of them.
func TestMetricsOfRealProcesses(t *testing.T) {
	dir := t.TempDir()
	nsMetrics, psMetrics := freePort(t), freePort(t)
	_, nsURL, env := startNS(t, filepath.Join(dir, "ns"), "", "--metrics-addr", nsMetrics)
	_, psURL := startPS(t, env, "ps1", filepath.Join(dir, "ps"), "--metrics-addr", psMetrics)
	pkg := publishPackage(t, env, dir, "metered", 3, 4096)
	waitPackageReady(t, env, "ps1", pkg.id, time.Minute)
	// A relocation attempt, whatever its outcome here: it counts an
	// attempt and raises an alert.
	target := filepath.Join(dir, "elsewhere")
	since := setLocation(t, env, "ps1", target)
	waitAttempt(t, env, "ps1", target, since, time.Minute)
	if code, _ := fetch(t, psURL+"/packages/"+pkg.id+"/f00.bin"); code != 200 {
		t.Errorf("download: %d", code)
	}
	if code, _ := fetch(t, psURL+"/packages/"+pkg.id+"/nothing"); code != 404 {
		t.Errorf("download of no file: %d", code)
	}

	// The PS's health report with its first link audit has reached the NS.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var srv api.Server
		mustJSON(t, env, &srv, "server", "show", "ps1")
		if srv.Health != nil && srv.Health.Links != nil && len(srv.Health.Capacity) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no health report with a link audit from ps1 within a minute: %+v", srv.Health)
		}
	}
	ns := promtext.Scrape(t, "http://"+nsMetrics+"/metrics", "")
	ps := promtext.Scrape(t, "http://"+psMetrics+"/metrics", "")
	if v, ok := ns.Value("wharf_ns_servers", "state", "online"); !ok || v != 1 {
		t.Errorf("NS: wharf_ns_servers{state=online} = %v (%v), want 1", v, ok)
	}
	if v, ok := ps.Value("wharf_ps_packages", "state", "ready"); !ok || v != 1 {
		t.Errorf("PS: wharf_ps_packages{state=ready} = %v (%v), want 1", v, ok)
	}
	if v, ok := ps.Value("wharf_ps_http_requests_total", "code", "404"); !ok || v < 1 {
		t.Errorf("PS: wharf_ps_http_requests_total{code=404} = %v (%v), want at least 1", v, ok)
	}
	// The token-free listener is the only way in without the admin token.
	if code, _ := fetch(t, nsURL+"/metrics"); code != 401 {
		t.Errorf("NS /metrics on --addr without a token: %d, want 401", code)
	}
	for _, u := range []string{nsURL, "http://" + nsMetrics, psURL, "http://" + psMetrics} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := fetch(t, u+path); code != 200 {
				t.Errorf("GET %s%s: %d %s", u, path, code, body)
			}
		}
	}

	// Every metric of the dashboard is one the servers export.
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana", "wharf-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var exprs []string
	walk(dash, func(k string, v any) {
		if s, ok := v.(string); ok && k == "expr" {
			exprs = append(exprs, s)
		}
	})
	if len(exprs) < 20 {
		t.Fatalf("the dashboard has %d queries", len(exprs))
	}
	// Present only in some states: the progress of a relocation under way.
	onlyWhile := map[string]string{"wharf_ns_server_relocation_progress_ratio": "a relocation runs",
		"wharf_ns_volume_forecast_days": "a volume is filling (a day of history at least)"}
	names := regexp.MustCompile(`\b(?:wharf|process|go)_[a-z0-9_]+`)
	seen := map[string]bool{}
	for _, e := range exprs {
		for _, n := range names.FindAllString(e, -1) {
			seen[n] = true
		}
	}
	var missing []string
	for n := range seen {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && (ns[b] != nil || ps[b] != nil) {
				base = b
			}
		}
		if ns[base] == nil && ps[base] == nil && onlyWhile[base] == "" {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard uses metrics neither server exports: %s", strings.Join(missing, ", "))
	}
	t.Logf("NS exports %d metric families, PS %d; the dashboard uses %d metrics in %d queries", len(ns), len(ps), len(seen), len(exprs))
}

// walk calls fn for every key and value of a decoded JSON document.
func walk(v any, fn func(k string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			fn(k, vv)
			walk(vv, fn)
		}
	case []any:
		for _, vv := range x {
			walk(vv, fn)
		}
	}
}

// fetch GETs url and returns the status and body.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
