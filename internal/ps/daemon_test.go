package ps_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/pstest"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
	"github.com/wharf-project/wharf/internal/urlsign"
)

// running is a Daemon serving in the background.
type running struct {
	d      *ps.Daemon
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned, with err set
	err    error
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Serve: %v", r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func mustNew(t *testing.T, cfg ps.Config) *ps.Daemon {
	t.Helper()
	d, err := ps.New(cfg, pstest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func start(t *testing.T, cfg ps.Config) *running {
	t.Helper()
	d := mustNew(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = d.Serve(ctx)
	}()
	select {
	case <-d.Ready():
	case <-r.done:
		cancel()
		t.Fatalf("Serve: %v", r.err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("daemon not ready")
	}
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func baseConfig(t *testing.T, ns *nstest.NS) ps.Config {
	cfg := ps.DefaultConfig()
	cfg.InstallDir = t.TempDir()
	cfg.NS = ns.URL
	cfg.EnrollToken = ns.EnrollToken()
	cfg.Name = "PS1"
	cfg.Addr = "127.0.0.1:0"
	return cfg
}

func fetchURL(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDaemonEnrollsDownloadsAndServes(t *testing.T) {
	ns := nstest.New(t)
	ns.SetSettings(api.AgentSettings{PollWaitSeconds: 2, DownloadConcurrency: 2})
	pub := ns.AddPackage("tools", "1.0", map[string][]byte{"bin/tool.exe": []byte("tool bytes")})
	cfg := baseConfig(t, ns)
	r := start(t, cfg)

	if got := r.d.Name(); got != "ps1" {
		t.Errorf("name: got %q, want ps1", got)
	}
	if got, want := ns.ServerURL("ps1"), "http://"+r.d.Addr(); got != want {
		t.Errorf("enrolled URL: got %q, want %q", got, want)
	}
	cred := filepath.Join(cfg.InstallDir, ps.CredentialName)
	fi, err := os.Stat(cred)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("credential file mode: got %v, want 0600", fi.Mode().Perm())
	}

	if _, ok := ns.WaitState("ps1", pub.ID, api.StateReady, 20*time.Second); !ok {
		t.Fatal("package not ready")
	}
	code, body := fetchURL(t, r.d.URL()+"/packages/"+pub.ID+"/bin/tool.exe")
	if code != 200 || body != "tool bytes" {
		t.Errorf("download: HTTP %d %q", code, body)
	}

	// A package published later arrives through the long poll, no nudge.
	signed := ns.AddPackage("secret", "2", map[string][]byte{"s.bin": []byte("signed bytes")},
		func(s *api.PackageSummary) { s.Signed = true })
	if _, ok := ns.WaitState("ps1", signed.ID, api.StateReady, 10*time.Second); !ok {
		t.Fatal("package published later: not ready")
	}
	u := r.d.URL() + "/packages/" + signed.ID + "/s.bin"
	if code, _ := fetchURL(t, u); code != 403 {
		t.Errorf("signed package without signature: HTTP %d, want 403", code)
	}
	q := urlsign.Query(ns.SigningKey("ps1"), signed.ID, time.Now().Add(time.Minute))
	if code, body := fetchURL(t, u+"?"+q); code != 200 || body != "signed bytes" {
		t.Errorf("signed package with signature: HTTP %d %q", code, body)
	}

	// The admin endpoint.
	ac := admin.NewClient(admin.SocketPath(cfg.InstallDir))
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(admin.SocketPath(cfg.InstallDir))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("admin socket: %v, mode %v", err, fi.Mode().Perm())
		}
	}
	st, err := ac.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "ps1" || st.NSURL != ns.URL || st.StoragePath != filepath.Join(cfg.InstallDir, "Package Delivery") || len(st.Packages) != 2 {
		t.Errorf("status: got %+v", st)
	}
	for _, p := range st.Packages {
		if p.State != api.StateReady || !strings.HasPrefix(p.Path, st.StoragePath) {
			t.Errorf("status package: got %+v", p)
		}
	}

	// update-config: polls at once (the long poll would wait 2 s), applies.
	ns.Unassign(pub.ID)
	polls := ns.ConfigPolls()
	if err := ac.UpdateConfig(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ns.ConfigPolls() <= polls {
		t.Error("update-config did not poll")
	}
	waitFor(t, "removal", func() bool {
		_, err := os.Stat(filepath.Join(st.StoragePath, pub.ID))
		return os.IsNotExist(err)
	})
	r.stop(t)
	if _, err := os.Stat(admin.SocketPath(cfg.InstallDir)); !os.IsNotExist(err) {
		t.Errorf("admin socket left after stop: %v", err)
	}
}

func TestRestartReusesCredential(t *testing.T) {
	ns := nstest.New(t)
	p := ns.AddPackage("p", "1", map[string][]byte{"f": []byte("f")})
	cfg := baseConfig(t, ns)
	r := start(t, cfg)
	ns.WaitState("ps1", p.ID, api.StateReady, 10*time.Second)
	r.stop(t)
	before, _ := os.ReadFile(filepath.Join(cfg.InstallDir, ps.CredentialName))

	// A second start with another token: the token is ignored, not used.
	cfg.EnrollToken = ns.EnrollToken()
	cfg.NS = ""
	r = start(t, cfg)
	if r.d.Name() != "ps1" {
		t.Errorf("name after restart: %q", r.d.Name())
	}
	st, err := admin.NewClient(admin.SocketPath(cfg.InstallDir)).Status(context.Background())
	if err != nil || len(st.Packages) != 1 || st.Packages[0].State != api.StateReady || st.NSURL != ns.URL {
		t.Errorf("status after restart: %+v, %v", st, err)
	}
	r.stop(t)
	after, _ := os.ReadFile(filepath.Join(cfg.InstallDir, ps.CredentialName))
	if string(before) != string(after) {
		t.Error("credential file changed on restart")
	}
	// The unused token still works for another server.
	cfg2 := baseConfig(t, ns)
	cfg2.EnrollToken, cfg2.Name = cfg.EnrollToken, "ps2"
	start(t, cfg2)

	// Another name than the enrolled one is refused clearly.
	cfg.Name = "other"
	d, _ := ps.New(cfg, pstest.Logger(t))
	err = d.Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "differs from the enrolled name") {
		t.Errorf("other name: got %v", err)
	}
}

func TestStartRefusals(t *testing.T) {
	ns := nstest.New(t)
	cfg := baseConfig(t, ns)
	cfg.EnrollToken = ""
	d, _ := ps.New(cfg, pstest.Logger(t))
	if err := d.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "not enrolled") {
		t.Errorf("no credential, no token: got %v", err)
	}
	cfg.EnrollToken = "bogus"
	d, _ = ps.New(cfg, pstest.Logger(t))
	if err := d.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "enroll") {
		t.Errorf("bad token: got %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.InstallDir, ps.CredentialName)); !os.IsNotExist(err) {
		t.Errorf("credential written after a failed enrollment: %v", err)
	}

	// Two daemons on one install dir.
	cfg.EnrollToken = ns.EnrollToken()
	start(t, cfg)
	d, _ = ps.New(cfg, pstest.Logger(t))
	if err := d.Serve(context.Background()); !errors.Is(err, admin.ErrRunning) {
		t.Errorf("second daemon: got %v, want ErrRunning", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	ns := nstest.New(t)
	cfg := baseConfig(t, ns)
	os.WriteFile(admin.SocketPath(cfg.InstallDir), nil, 0o600) // left by a crash
	r := start(t, cfg)
	if _, err := admin.NewClient(admin.SocketPath(cfg.InstallDir)).Status(context.Background()); err != nil {
		t.Errorf("status: %v", err)
	}
	r.stop(t)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
