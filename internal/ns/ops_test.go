package ns_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ns"
	"github.com/wharf-project/wharf/internal/testenv/promtext"
)

// TestMetricsAndHealth runs a real NS (SQLite) and its --metrics-addr
// listener, makes a fleet of three servers (one relocating, one refused,
// one never seen again), and reads /metrics with the Prometheus text
// parser, /healthz and /readyz.
func TestMetricsAndHealth(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := ns.Open(ctx, ns.Config{DataDir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served, opsServed := make(chan error, 1), make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	go func() { opsServed <- srv.ServeOps(ctx, opsLn) }()
	url, opsURL := "http://"+ln.Addr().String(), "http://"+opsLn.Addr().String()
	tok, _ := os.ReadFile(filepath.Join(dir, ns.AdminTokenFile))
	token := strings.TrimSpace(string(tok))
	admin, _ := apiclient.New(url, token, nil)
	anon, _ := apiclient.New(url, "", nil)

	agents := map[string]*apiclient.Client{}
	for _, name := range []string{"ps-a", "ps-b", "ps-c"} {
		et, err := admin.CreateEnrollToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		enr, err := anon.Enroll(ctx, api.EnrollRequest{Token: et.Token, Name: name, OS: "linux", URL: "http://" + name + ":8081"})
		if err != nil {
			t.Fatal(err)
		}
		agents[name], _ = apiclient.New(url, enr.Credential, nil)
	}
	now := time.Now().UTC()
	post := func(name string, ev api.LocationStatus) {
		t.Helper()
		ev.LastAttempt = now
		if err := agents[name].PostLocationStatus(ctx, name, ev); err != nil {
			t.Fatal(err)
		}
	}
	post("ps-a", api.LocationStatus{StoragePath: "/srv/a", LastStatus: 0x004,
		Progress: &api.RelocationProgress{BytesDone: 1, BytesTotal: 4, PackagesTotal: 1}})
	post("ps-b", api.LocationStatus{StoragePath: "/srv/b", LastStatus: 0x020, Outcome: api.OutcomeRefused})
	post("ps-b", api.LocationStatus{StoragePath: "/srv/b", LastStatus: 0x420, Outcome: api.OutcomeRefused}) // a repeat
	// ps-a and ps-b poll (they are online); a long poll is held while we scrape.
	for _, name := range []string{"ps-a", "ps-b"} {
		if _, _, _, err := agents[name].AgentConfig(ctx, name, "", 0); err != nil {
			t.Fatal(err)
		}
	}
	cfg, etag, _, err := agents["ps-a"].AgentConfig(ctx, "ps-a", "", 0)
	if err != nil || cfg.Server != "ps-a" {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, _, _, err := agents["ps-a"].AgentConfig(ctx, "ps-a", etag, 30*time.Second)
		held <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := admin.PollStats(ctx); err != nil || st.Waiting > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	fams := promtext.Scrape(t, url+"/metrics", token)
	if v, _ := fams.Value("wharf_ns_polls_waiting"); v != 1 {
		t.Errorf("wharf_ns_polls_waiting = %v, want 1", v)
	}
	// A change that wakes it: a retry task for ps-a.
	if _, err := admin.CreateTask(ctx, "ps-a", api.TaskRequest{Type: api.TaskRetryRelocation}); err != nil {
		t.Fatal(err)
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	fams = promtext.Scrape(t, opsURL+"/metrics", "")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wharf_ns_servers", []string{"state", "relocating"}, 1},
		{"wharf_ns_servers", []string{"state", "attention"}, 1},
		{"wharf_ns_servers", []string{"state", "never"}, 1},
		{"wharf_ns_servers", []string{"state", "offline"}, 0},
		{"wharf_ns_server_relocation", []string{"server", "ps-a", "state", "running"}, 1},
		{"wharf_ns_server_relocation", []string{"server", "ps-b", "state", "refused"}, 1},
		{"wharf_ns_server_relocation", []string{"server", "ps-c", "state", "none"}, 1},
		{"wharf_ns_server_relocation_status", []string{"server", "ps-b"}, 0x420},
		{"wharf_ns_server_relocation_progress_ratio", []string{"server", "ps-a"}, 0.25},
		{"wharf_ns_alerts_unread", []string{"level", "warning"}, 1},
		{"wharf_ns_alerts_raised_total", []string{"level", "warning", "repeat", "true"}, 1},
		{"wharf_ns_alerts_raised_total", []string{"level", "warning", "repeat", "false"}, 1},
		{"wharf_ns_polls_waiting", nil, 0},
		{"wharf_ns_fleet_snapshot_ok", nil, 1},
		{"wharf_ns_http_requests_total", []string{"route", "POST /api/v1/agent/enroll", "code", "201"}, 3},
		{"wharf_ns_http_requests_total", []string{"route", "POST /api/v1/agent/{name}/events", "code", "204"}, 3},
	} {
		got, ok := fams.Value(c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if v, ok := fams.Value("wharf_ns_poll_wakes_total"); !ok || v < 1 {
		t.Errorf("wharf_ns_poll_wakes_total = %v, want at least the poll the task woke", v)
	}
	if v, ok := fams.Value("wharf_ns_change_fanout_seconds", "part", "tasks"); !ok || v < 1 {
		t.Errorf("wharf_ns_change_fanout_seconds{part=tasks} counts %v changes, want at least 1", v)
	}
	if v, ok := fams.Value("wharf_ns_http_request_duration_seconds", "route", "GET /api/v1/agent/{name}/config"); !ok || v < 3 {
		t.Errorf("request durations of the config route: %v", v)
	}

	// /metrics on the NS's own address takes the admin token.
	if resp, err := http.Get(url + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %v %v, want 401", resp.Status, err)
	}
	for _, base := range []string{url, opsURL} {
		for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]string
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || body["status"] != want {
				t.Errorf("GET %s%s: %d %v, want 200 %s", base, path, resp.StatusCode, body, want)
			}
		}
	}

	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if err := <-opsServed; err != nil {
		t.Fatal(err)
	}
}
