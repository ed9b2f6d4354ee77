package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/publish"
	"github.com/wharf-project/wharf/internal/testenv/pgtest"
)

// failover is the load balancer of a replicated NS, as small as it gets:
// each request goes to the first replica that accepts a connection.
type failover struct {
	backends []*url.URL
	tried    atomic.Int64 // requests sent on to a later backend
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	var err error
	for _, b := range f.backends {
		r := req.Clone(req.Context())
		r.Body = req.Body
		r.URL.Scheme, r.URL.Host, r.Host = b.Scheme, b.Host, b.Host
		var resp *http.Response
		resp, err = http.DefaultTransport.RoundTrip(r)
		var op *net.OpError
		if err != nil && errors.As(err, &op) && op.Op == "dial" && req.GetBody != nil {
			f.tried.Add(1)
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
			continue // nothing was sent: the next replica may take it
		}
		return resp, err
	}
	return nil, err
}

// TestReplicas starts two NS replicas on one PostgreSQL database and one
// blob folder, behind a load balancer, with a real Package Server.
func TestReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	blobDir := t.TempDir()
	dirA, dirB := t.TempDir(), t.TempDir()
	nsA, urlA, envA := startNS(t, dirA, dsn, "--blobs", blobDir)
	nsB, urlB := start(t, nsListening, nil, "ns", "serve", "--data", dirB, "--db", dsn, "--blobs", blobDir, "--addr", "127.0.0.1:0")
	defer nsB.stop(t)
	if strings.Contains(nsB.output(), "Admin token") {
		t.Fatalf("the second replica minted an admin token:\n%s", nsB.output())
	}
	if _, err := os.Stat(filepath.Join(dirB, "admin.token")); !os.IsNotExist(err) {
		t.Fatalf("the second replica wrote an admin.token: %v", err)
	}
	token := strings.TrimPrefix(envA[1], "WHARF_TOKEN=")
	envB := []string{"WHARF_NS=" + urlB, "WHARF_TOKEN=" + token}

	lbBackends := []*url.URL{mustURL(t, urlA), mustURL(t, urlB)}
	fo := &failover{backends: lbBackends}
	lb := httptest.NewServer(&proxy{rt: fo})
	defer lb.Close()
	envLB := []string{"WHARF_NS=" + lb.URL, "WHARF_TOKEN=" + token}

	t.Run("a policy changed through A reaches a long poll held on B within a second", func(t *testing.T) {
		ctx := context.Background()
		adminA, _ := apiclient.New(urlA, token, nil)
		adminB, _ := apiclient.New(urlB, token, nil)
		tok, err := adminA.CreateEnrollToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		anon, _ := apiclient.New(urlA, "", nil)
		e, err := anon.Enroll(ctx, api.EnrollRequest{Token: tok.Token, Name: "poller", OS: "linux", URL: "http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		onB, _ := apiclient.New(urlB, e.Credential, nil)
		_, etag, _, err := onB.AgentConfig(ctx, "poller", "", 0)
		if err != nil {
			t.Fatalf("B refuses a server enrolled through A: %v", err)
		}
		before, err := adminB.PollStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		type answer struct {
			cfg     api.AgentConfig
			changed bool
			at      time.Time
			err     error
		}
		got := make(chan answer, 1)
		go func() {
			cfg, _, changed, err := onB.AgentConfig(ctx, "poller", etag, 30*time.Second)
			got <- answer{cfg, changed, time.Now(), err}
		}()
		waitFor(t, 10*time.Second, "B holds the poll", func() bool {
			st, err := adminB.PollStats(ctx)
			return err == nil && st.Waiting > before.Waiting
		})
		start := time.Now()
		seven := 7
		if _, err := adminA.SetSiteServerPolicy(ctx, "", api.SiteServerSettings{DownloadConcurrency: &seven}); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-got:
			if a.err != nil || !a.changed || a.cfg.Settings.DownloadConcurrency != 7 {
				t.Fatalf("B's poll: %+v", a)
			}
			if d := a.at.Sub(start); d > time.Second {
				t.Fatalf("the change reached B's poll after %s, want within a second", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a policy changed through A did not reach the poll held on B")
		}
	})

	// A real Package Server polls through the load balancer (A first).
	psDir := t.TempDir()
	ps, _ := startPS(t, envLB, "ps-replica", psDir)
	defer ps.stop(t)

	var pkgA publish.Result
	t.Run("a package published through A is downloadable through B", func(t *testing.T) {
		tree := t.TempDir()
		makeTree(t, tree, 5)
		mustJSON(t, envA, &pkgA, "package", "add", tree, "--name", "from-a", "--version", "1")
		var shown api.Package
		mustJSON(t, envB, &shown, "package", "show", pkgA.Package.ID)
		adminB, _ := apiclient.New(urlB, token, nil)
		for _, f := range shown.Files {
			resp, err := blobGet(adminB, f.SHA256)
			if err != nil {
				t.Fatalf("blob %s of %s through B: %v", f.SHA256, f.Path, err)
			}
			if int64(len(resp)) != f.Size {
				t.Fatalf("blob of %s through B: %d bytes, want %d", f.Path, len(resp), f.Size)
			}
		}
		waitReady(t, envB, "ps-replica", pkgA.Package.ID)
	})

	t.Run("a console login made on A is valid on B", func(t *testing.T) {
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Get(urlA + "/login")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
		if m == nil {
			t.Fatal("no CSRF field on A's login page")
		}
		req, _ := http.NewRequest("POST", urlA+"/login", strings.NewReader(url.Values{"csrf": {string(m[1])}, "secret": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range resp.Cookies() {
			req.AddCookie(c)
		}
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "wharf_session" && c.Value != "" {
				session = c
			}
		}
		if resp.StatusCode != http.StatusSeeOther || session == nil {
			t.Fatalf("login on A: %d, session cookie %v", resp.StatusCode, session)
		}
		req, _ = http.NewRequest("GET", urlB+"/servers", nil)
		req.AddCookie(session)
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "ps-replica") {
			t.Fatalf("the session made on A, on B: %d (%s), want the servers page", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("a client token revoked and a server removed through A stop working on B within a second", func(t *testing.T) {
		ctx := context.Background()
		adminA, _ := apiclient.New(urlA, token, nil)
		status := func(tok, path string) int {
			c, _ := apiclient.New(urlB, tok, nil)
			req, _ := c.NewRequest(ctx, "GET", path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		within := func(what string, refused func() bool) {
			t.Helper()
			start := time.Now()
			for !refused() {
				if time.Since(start) > time.Second {
					t.Fatalf("%s still works on B a second after A took it away", what)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%s refused by B %s after A answered", what, time.Since(start).Round(time.Millisecond))
		}
		ct, err := adminA.CreateClientToken(ctx, "replica-client")
		if err != nil {
			t.Fatal(err)
		}
		if code := status(ct.Token, "/packages"); code != 200 {
			t.Fatalf("B on a client token made through A: %d", code)
		}
		if err := adminA.RevokeClientToken(ctx, "replica-client"); err != nil {
			t.Fatal(err)
		}
		within("a client token revoked through A", func() bool { return status(ct.Token, "/packages") == 401 })

		et, err := adminA.CreateEnrollToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		anon, _ := apiclient.New(urlA, "", nil)
		e, err := anon.Enroll(ctx, api.EnrollRequest{Token: et.Token, Name: "ps-doomed", OS: "linux", URL: "http://ps-doomed:8081"})
		if err != nil {
			t.Fatal(err)
		}
		if code := status(e.Credential, "/agent/ps-doomed/config?wait=0"); code != 200 {
			t.Fatalf("B on a server enrolled through A: %d", code)
		}
		if err := adminA.RemoveServer(ctx, "ps-doomed"); err != nil {
			t.Fatal(err)
		}
		within("the credential of a server removed through A", func() bool { return status(e.Credential, "/agent/ps-doomed/config?wait=0") == 401 })
	})

	t.Run("killing A mid-poll leaves the Package Server polling B with nothing lost", func(t *testing.T) {
		adminB, _ := apiclient.New(urlB, token, nil)
		ctx := context.Background()
		// The PS's poll is held by A (the balancer's first choice).
		waitFor(t, 10*time.Second, "A holds the PS's poll", func() bool {
			st, err := apiClientStats(urlA, token)
			return err == nil && st.Waiting >= 1
		})
		if st, err := apiClientStats(urlB, token); err != nil || st.Waiting != 0 {
			t.Fatalf("B holds %d polls (%v) before A dies, want none", st.Waiting, err)
		}
		nsA.kill()
		killed := time.Now()
		waitFor(t, 30*time.Second, "B holds the PS's poll", func() bool {
			st, err := adminB.PollStats(ctx)
			return err == nil && st.Waiting >= 1
		})
		t.Logf("the PS polls B %s after A was killed", time.Since(killed).Round(time.Millisecond))
		tree := t.TempDir()
		makeTree(t, tree, 3)
		var pkgB publish.Result
		mustJSON(t, envB, &pkgB, "package", "add", tree, "--name", "from-b", "--version", "1")
		waitReady(t, envB, "ps-replica", pkgB.Package.ID)
		nine := 9
		if _, err := adminB.SetSiteServerPolicy(ctx, "", api.SiteServerSettings{DownloadConcurrency: &nine}); err != nil {
			t.Fatal(err)
		}
		var srv api.Server
		mustJSON(t, envB, &srv, "server", "show", "ps-replica")
		ready := map[string]bool{}
		for _, st := range srv.Packages {
			ready[st.PackageID] = st.State == api.StateReady
		}
		if !ready[pkgA.Package.ID] || !ready[pkgB.Package.ID] {
			t.Fatalf("after A died the PS has %+v, want both packages ready", srv.Packages)
		}
		if fo.tried.Load() == 0 {
			t.Fatal("no request went on to B: the test did not test failover")
		}
	})
}

type proxy struct{ rt http.RoundTripper }

// ServeHTTP forwards a request, streaming the answer.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	body, err := io.ReadAll(r.Body) // kept, to send it again to another replica
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.Body, _ = out.GetBody()
	out.ContentLength = int64(len(body))
	resp, err := p.rt.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReady waits until the server reports the package ready.
func waitReady(t *testing.T, env []string, server, id string) {
	t.Helper()
	waitFor(t, 60*time.Second, server+" reports "+id+" ready", func() bool {
		var srv api.Server
		mustJSON(t, env, &srv, "server", "show", server)
		for _, st := range srv.Packages {
			if st.PackageID == id && st.State == api.StateReady {
				return true
			}
		}
		return false
	})
}

func apiClientStats(nsURL, token string) (api.PollStats, error) {
	c, err := apiclient.New(nsURL, token, nil)
	if err != nil {
		return api.PollStats{}, err
	}
	return c.PollStats(context.Background())
}

func blobGet(c *apiclient.Client, digest string) ([]byte, error) {
	req, err := c.NewRequest(context.Background(), "GET", "/blobs/"+digest, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
