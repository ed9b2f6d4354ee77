package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/publish"
	"github.com/wharf-project/wharf/internal/testenv/tlstest"
)

// TestTrustEndToEnd runs `wharf ns serve` over TLS, a `wharf ps serve`
// over TLS that trusts the NS's CA with --ca, and the CLI as an
// administrator and as a client:
//
//   - `wharf get` downloads a signed package with a client token and
//     --ca, never the admin token; without --ca it fails on the
//     certificate; the client token is refused on admin commands;
//   - a public package needs no token; a signed one does;
//   - the console over HTTPS sets Secure cookies, every answer carries HSTS;
//   - a revoked client token, a replaced admin token, a rotated and then a
//     removed Package Server's credential stop working within a second.
func TestTrustEndToEnd(t *testing.T) {
	certs := tlstest.New(t)
	dir := t.TempDir()
	_, nsURL, adminEnv := startNS(t, filepath.Join(dir, "ns"), "", "--tls-cert", certs.Cert, "--tls-key", certs.Key)
	if !strings.HasPrefix(nsURL, "https://") {
		t.Fatalf("the NS listens on %s, want https", nsURL)
	}
	adminEnv = append(adminEnv, "WHARF_CA="+certs.CA)
	adminToken := strings.TrimPrefix(adminEnv[1], "WHARF_TOKEN=")

	// A Package Server over TLS too, trusting the CA for the NS.
	var et api.EnrollToken
	mustJSON(t, adminEnv, &et, "ns", "enroll-token")
	psDir := filepath.Join(dir, "ps")
	psAddr := freePort(t)
	start(t, regexp.MustCompile(`serving on (\S+)`), nil, "ps", "serve", "--ns", nsURL, "--ca", certs.CA, "--enroll", et.Token,
		"--install-dir", psDir, "--addr", psAddr, "--name", "ps1", "--tls-cert", certs.Cert, "--tls-key", certs.Key)

	tree := filepath.Join(dir, "tree")
	makeTree(t, tree, 5)
	var signed, public publish.Result
	mustJSON(t, adminEnv, &signed, "package", "add", tree, "--name", "tool", "--version", "1")
	mustJSON(t, adminEnv, &public, "package", "add", tree, "--name", "bootstrap", "--version", "1", "--public")
	if signed.Package.Public || !public.Package.Public {
		t.Fatalf("published %+v and %+v: want the first signed, the second public", signed.Package, public.Package)
	}
	waitPackageReady(t, adminEnv, "ps1", signed.Package.ID, time.Minute)
	waitPackageReady(t, adminEnv, "ps1", public.Package.ID, time.Minute)

	var ct api.ClientToken
	mustJSON(t, adminEnv, &ct, "client-token", "create", "laptops")
	clientEnv := []string{"WHARF_NS=" + nsURL, "WHARF_TOKEN=" + ct.Token, "WHARF_CA=" + certs.CA}

	t.Run("get with a client token", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "tool")
		if r := run(t, clientEnv, "get", "tool@1", "--dest", dest); r.code != 0 {
			t.Fatalf("wharf get with a client token: exit %d: %s", r.code, r.stderr)
		}
		sameTree(t, tree, dest)
		if r := run(t, []string{"WHARF_NS=" + nsURL, "WHARF_TOKEN=" + ct.Token, "WHARF_CA="}, "get", "tool@1", "--dest", t.TempDir()); r.code == 0 || !strings.Contains(r.stderr, "certificate") {
			t.Errorf("without the CA: exit %d %q, want a certificate error", r.code, r.stderr)
		}
		for _, args := range [][]string{{"server", "ls"}, {"package", "rm", "tool@1"}, {"client-token", "create", "mine"}, {"ns", "enroll-token"}} {
			if r := run(t, clientEnv, args...); r.code != 1 || !strings.Contains(r.stderr, "needs the admin token") {
				t.Errorf("wharf %s with a client token: exit %d %q, want 1 and 403", strings.Join(args, " "), r.code, r.stderr)
			}
		}
	})

	t.Run("public without a token", func(t *testing.T) {
		anon := []string{"WHARF_NS=" + nsURL, "WHARF_TOKEN=", "WHARF_CA=" + certs.CA}
		dest := t.TempDir()
		if r := run(t, anon, "get", "bootstrap", "--dest", dest); r.code != 0 {
			t.Fatalf("a public package without a token: exit %d: %s", r.code, r.stderr)
		}
		sameTree(t, tree, dest)
		if r := run(t, anon, "get", signed.Package.ID, "--dest", t.TempDir()); r.code != 1 || !strings.Contains(r.stderr, "client token") {
			t.Errorf("a signed package without a token: exit %d %q, want 1 naming the client token", r.code, r.stderr)
		}
	})

	t.Run("console over TLS", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool}}}
		resp, err := hc.Get(nsURL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=") {
			t.Errorf("no HSTS over TLS: %q", h)
		}
		cookies := resp.Header.Values("Set-Cookie")
		if len(cookies) == 0 {
			t.Fatal("the login page set no cookie")
		}
		for _, c := range cookies {
			if !strings.Contains(c, "; Secure") {
				t.Errorf("cookie %q is not Secure", c)
			}
		}
		req, _ := http.NewRequest("GET", nsURL+"/api/v1/servers", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if resp, err := hc.Do(req); err != nil || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("the API over TLS: %v, HSTS %q", err, resp.Header.Get("Strict-Transport-Security"))
		}
	})

	// Revocations, each refused within a second.
	within := func(what string, refused func() bool) {
		t.Helper()
		start := time.Now()
		for !refused() {
			if time.Since(start) > time.Second {
				t.Fatalf("%s still works after a second", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s refused %s after the command returned", what, time.Since(start).Round(time.Millisecond))
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool}}}
	status := func(token, path string) int {
		req, _ := http.NewRequest("GET", nsURL+"/api/v1"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mustRun := func(env []string, args ...string) string {
		t.Helper()
		r := run(t, env, args...)
		if r.code != 0 {
			t.Fatalf("wharf %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	mustRun(adminEnv, "client-token", "revoke", "laptops")
	within("a revoked client token", func() bool { return status(ct.Token, "/packages") == 401 })

	credOf := func() string {
		data, err := os.ReadFile(filepath.Join(psDir, "credential.json"))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Credential string `json:"credential"`
		}
		json.Unmarshal(data, &c)
		return c.Credential
	}
	old := credOf()
	mustRun(adminEnv, "server", "rotate-credential", "ps1")
	if now := credOf(); now == old {
		t.Fatal("rotate-credential returned, but the PS's credential file is unchanged")
	}
	within("the PS's old credential", func() bool { return status(old, "/agent/ps1/config?wait=0") == 401 })
	if code := status(credOf(), "/agent/ps1/config?wait=0"); code != 200 {
		t.Fatalf("the PS's new credential: %d", code)
	}
	mustRun(adminEnv, "server", "rm", "ps1")
	cred := credOf()
	within("a removed PS's credential", func() bool { return status(cred, "/agent/ps1/config?wait=0") == 401 })
	anon, _ := apiclient.New(nsURL, "", hc)
	if cb, err := anon.Codebases(context.Background(), public.Package.ID); err != nil || len(cb.Codebases) != 0 {
		t.Errorf("codebases after the PS was removed: %+v, %v; want none", cb, err)
	}

	newAdmin := strings.TrimSpace(mustRun(adminEnv, "ns", "rotate-admin-token"))
	within("the replaced admin token", func() bool { return status(adminToken, "/servers") == 401 })
	if code := status(newAdmin, "/servers"); code != 200 {
		t.Fatalf("the new admin token: %d", code)
	}
	if file, _ := os.ReadFile(filepath.Join(dir, "ns", "admin.token")); strings.TrimSpace(string(file)) != newAdmin {
		t.Errorf("admin.token holds %q, want the new token", file)
	}
}

// sameTree fails unless dest holds the files of src, byte for byte.
func sameTree(t *testing.T, src, dest string) {
	t.Helper()
	n := 0
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(dest, rel))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %v (%d bytes, want %d)", rel, err, len(got), len(want))
		}
		n++
		return nil
	})
	if n == 0 {
		t.Fatal("empty source tree")
	}
}
