package ps_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
	"github.com/wharf-project/wharf/internal/testenv/promtext"
)

// TestMetricsListenerAndHealth: with metrics_addr the PS serves its
// registry over TCP in the Prometheus text format (it was on the admin
// socket only), and /healthz and /readyz there and on the package port.
func TestMetricsListenerAndHealth(t *testing.T) {
	ns := nstest.New(t)
	ns.SetSettings(api.AgentSettings{PollWaitSeconds: 2, DownloadConcurrency: 2})
	pub := ns.AddPackage("tools", "1.0", map[string][]byte{"bin/tool.exe": []byte("tool bytes")})
	cfg := baseConfig(t, ns)
	cfg.MetricsAddr = "127.0.0.1:0"
	r := start(t, cfg)
	if _, ok := ns.WaitState("ps1", pub.ID, api.StateReady, 20*time.Second); !ok {
		t.Fatal("package not ready")
	}
	for range 3 {
		if code, _ := fetchURL(t, r.d.URL()+"/packages/"+pub.ID+"/bin/tool.exe"); code != 200 {
			t.Fatalf("download: %d", code)
		}
	}
	fetchURL(t, r.d.URL()+"/packages/"+pub.ID+"/nothing-here")

	metricsURL := "http://" + r.d.MetricsAddr()
	fams := promtext.Scrape(t, metricsURL+"/metrics", "")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wharf_ps_packages", []string{"state", "ready"}, 1},
		{"wharf_ps_packages", []string{"state", "unavailable"}, 0},
		{"wharf_ps_http_requests_total", []string{"code", "200"}, 3},
		{"wharf_ps_http_requests_total", []string{"code", "404"}, 1},
		{"wharf_ps_root_packages", []string{"root", cfg.PrimaryLocation()}, 1},
		{"wharf_ps_root_available", []string{"root", cfg.PrimaryLocation()}, 1},
		{"wharf_relocation_running", nil, 0},
	} {
		if got, ok := fams.Value(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, name := range []string{"wharf_ps_volume_free_bytes", "wharf_ps_volume_size_bytes", "wharf_ps_volume_reserve_bytes",
		"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	for _, base := range []string{metricsURL, r.d.URL()} {
		for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]string
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != 200 || body["status"] != want || body["server"] != "ps1" {
				t.Errorf("GET %s%s: %d %v, want 200 %s", base, path, resp.StatusCode, body, want)
			}
		}
	}
	// The package port does not serve the metrics: they stay off the
	// clients' network unless metrics_addr puts them on another.
	if code, _ := fetchURL(t, r.d.URL()+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the package port: %d, want 404", code)
	}
	r.stop(t)
}
