package admin_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/location"
	"github.com/wharf-project/wharf/internal/ps/relocate"
)

type fakeBackend struct{ retries atomic.Int32 }

func (f *fakeBackend) Status(context.Context, int) (admin.Status, error) {
	return admin.Status{Name: "ps-<b>", StoragePath: "/srv/wharf", NSURL: "http://ns:8080",
		Locations: []admin.Location{{Root: "/srv/wharf", Packages: 2, Bytes: 3 << 20}},
		Relocation: &location.Status{Target: "/srv/wharf", LastStatusFlags: []string{"some-not-moved"},
			Message: "Some of the files have not been moved to the new location.", AttemptsDone: 1, MaxAttempts: 3},
		Packages: []admin.PackageStatus{{ID: "p1", Name: "agent", Version: "1", State: "ready", Path: "/old/p1", Link: "/srv/wharf/p1"}},
	}, nil
}
func (f *fakeBackend) UpdateConfig(context.Context) error { return nil }
func (f *fakeBackend) RetryRelocation(context.Context) error {
	f.retries.Add(1)
	return nil
}
func (f *fakeBackend) PlanRelocation(context.Context, string) (*relocate.Plan, error) {
	return nil, nil
}

func TestStatusPageThroughConsoleProxy(t *testing.T) {
	sock := admin.SocketPath(t.TempDir())
	ln, err := admin.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	be := &fakeBackend{}
	srv := &http.Server{Handler: admin.Handler(be, slog.New(slog.DiscardHandler))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	reachable(t, sock)

	proxy := httptest.NewServer(admin.ConsoleProxy(sock, "s3cret"))
	t.Cleanup(proxy.Close)
	get := func(c *http.Client, path string) (int, string) {
		t.Helper()
		resp, err := c.Get(proxy.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, _ := get(http.DefaultClient, "/"); code != http.StatusForbidden {
		t.Fatalf("without the token: %d, want 403", code)
	}
	if code, _ := get(http.DefaultClient, "/?token=guess"); code != http.StatusForbidden {
		t.Fatalf("with a wrong token: %d, want 403", code)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	code, page := get(browser, "/?token=s3cret")
	if code != http.StatusOK {
		t.Fatalf("with the token: %d", code)
	}
	for _, want := range []string{"/srv/wharf", "some-not-moved", "1 done of 3 at most", "Some of the files have not been moved",
		"via link", "retry-button", "ps-&lt;b&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if code, _ := get(browser, "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics through the proxy: %d, want 404", code)
	}

	post := func(origin string) int {
		req, _ := http.NewRequest("POST", proxy.URL+"/ui/retry-relocation", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		noRedirect := *browser
		noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("http://evil.example"); code != http.StatusForbidden || be.retries.Load() != 0 {
		t.Fatalf("cross-origin retry: %d, retries %d; want 403 and none", code, be.retries.Load())
	}
	if code := post(proxy.URL); code != http.StatusSeeOther || be.retries.Load() != 1 {
		t.Fatalf("retry from the page: %d, retries %d; want 303 and one", code, be.retries.Load())
	}
	if _, page := get(browser, "/?notice=retry"); !strings.Contains(page, "A manual relocation retry was queued.") {
		t.Error("no notice after the retry")
	}
}

// TestOneEndpointPerInstallDir: a second Package Server on the same install
// dir finds the first one answering and does not start; two install dirs
// have two endpoints.
func TestOneEndpointPerInstallDir(t *testing.T) {
	dir := t.TempDir()
	ln, err := admin.Listen(admin.SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admin.Handler(&fakeBackend{}, slog.New(slog.DiscardHandler))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	reachable(t, admin.SocketPath(dir))
	if _, err := admin.Listen(admin.SocketPath(dir)); !errors.Is(err, admin.ErrRunning) {
		t.Fatalf("a second Listen on the same install dir: %v, want ErrRunning", err)
	}
	other := t.TempDir()
	if admin.SocketPath(other) == admin.SocketPath(dir) {
		t.Fatalf("two install dirs share the endpoint %s", admin.SocketPath(dir))
	}
	ln2, err := admin.Listen(admin.SocketPath(other))
	if err != nil {
		t.Fatalf("Listen for another install dir: %v", err)
	}
	ln2.Close()
	if _, err := admin.NewClient(admin.SocketPath(dir)).Status(context.Background()); err != nil {
		t.Fatalf("status through the endpoint: %v", err)
	}
}
