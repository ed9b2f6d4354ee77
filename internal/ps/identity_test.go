package ps_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/client"
	"github.com/wharf-project/wharf/internal/ps"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
	"github.com/wharf-project/wharf/internal/testenv/tlstest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// realNSConfig is baseConfig for a PS of the real NS (nstest).
func realNSConfig(t *testing.T, n *nstest.NS) ps.Config {
	cfg := ps.DefaultConfig()
	cfg.InstallDir = t.TempDir()
	cfg.NS = n.URL
	cfg.EnrollToken = n.EnrollToken()
	cfg.Name = "ps1"
	cfg.Addr = "127.0.0.1:0"
	return cfg
}

type credFile struct {
	Credential string `json:"credential"`
	Pending    string `json:"pending_credential"`
}

func readCred(t *testing.T, dir string) credFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ps.CredentialName))
	if err != nil {
		t.Fatal(err)
	}
	var c credFile
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// refused reports whether the NS refuses cred (401 on the server's
// configuration).
func refused(t *testing.T, n *nstest.NS, cred string) bool {
	t.Helper()
	c, _ := apiclient.New(n.URL, cred, nil)
	_, _, _, err := c.AgentConfig(context.Background(), "ps1", "", 0)
	return errors.Is(err, wharf.ErrUnauthorized)
}

// waitWithin polls cond every 10 ms for up to d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCredentialRotation: `wharf server rotate-credential` queues a task;
// the PS takes it with its next poll, keeps a new credential in its file
// (no pending one left), the NS refuses the old one, and the PS goes on
// working — also after a restart, with what its file holds.
func TestCredentialRotation(t *testing.T) {
	n := nstest.New(t)
	n.SetSettings(api.AgentSettings{PollWaitSeconds: 30})
	cfg := realNSConfig(t, n)
	r := start(t, cfg)
	old := readCred(t, cfg.InstallDir).Credential
	task, err := n.Admin.RequestCredentialRotation(t.Context(), "ps1")
	if err != nil {
		t.Fatal(err)
	}
	// The poll waiting at the NS wakes with the task: done in well under
	// one poll wait.
	waitWithin(t, 5*time.Second, "rotation task done", func() bool {
		tk, err := n.Admin.Task(t.Context(), "ps1", task.ID)
		return err == nil && !tk.DoneAt.IsZero()
	})
	now := readCred(t, cfg.InstallDir)
	if now.Credential == old || now.Pending != "" || !strings.HasPrefix(now.Credential, "wharf-ps-") {
		t.Fatalf("credential file after the rotation: %+v (old %q), want a new credential and none pending", now, old)
	}
	if !refused(t, n, old) {
		t.Fatal("the NS still takes the old credential")
	}
	if refused(t, n, now.Credential) {
		t.Fatal("the NS refuses the new credential")
	}
	// Still working: a new package arrives.
	files := map[string][]byte{"a.txt": []byte("after the rotation")}
	p := n.Publish("after", "1", files, nstest.Public)
	if _, ok := n.WaitState("ps1", p.ID, api.StateReady, 20*time.Second); !ok {
		t.Fatal("the PS stopped working after its rotation")
	}
	r.stop(t)
	cfg.EnrollToken = ""
	start(t, cfg)
	p2 := n.Publish("after-restart", "1", files, nstest.Public)
	if _, ok := n.WaitState("ps1", p2.ID, api.StateReady, 20*time.Second); !ok {
		t.Fatal("the PS does not work after a restart with its new credential")
	}
}

// TestPendingCredentialAfterACrash: the NS took a new credential, but the
// PS stopped before recording it (the file names it as pending): the NS
// refuses the old one, the PS switches to the pending one and records it.
func TestPendingCredentialAfterACrash(t *testing.T) {
	n := nstest.New(t)
	cfg := realNSConfig(t, n)
	r := start(t, cfg)
	r.stop(t)
	path := filepath.Join(cfg.InstallDir, ps.CredentialName)
	var file map[string]any
	data, _ := os.ReadFile(path)
	json.Unmarshal(data, &file)
	old := file["credential"].(string)
	raw := make([]byte, 32)
	rand.Read(raw)
	next := "wharf-ps-" + base64.RawURLEncoding.EncodeToString(raw)
	agent, _ := apiclient.New(n.URL, old, nil)
	if err := agent.RotateCredential(t.Context(), "ps1", next, ""); err != nil {
		t.Fatal(err)
	}
	file["pending_credential"] = next // as the PS writes it before sending
	data, _ = json.Marshal(file)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.EnrollToken = ""
	start(t, cfg)
	p := n.Publish("after-crash", "1", map[string][]byte{"f": []byte("x")}, nstest.Public)
	if _, ok := n.WaitState("ps1", p.ID, api.StateReady, 20*time.Second); !ok {
		t.Fatal("the PS did not switch to its pending credential")
	}
	if c := readCred(t, cfg.InstallDir); c.Credential != next || c.Pending != "" {
		t.Fatalf("credential file: %+v, want the pending one recorded as the credential", c)
	}
}

// TestURLReportedOnEveryPoll: a PS restarted on another port, then with
// TLS, is what the codebases name from its first poll on, and a client
// downloads through them (trusting the CA, for TLS).
func TestURLReportedOnEveryPoll(t *testing.T) {
	n := nstest.New(t)
	cfg := realNSConfig(t, n)
	r := start(t, cfg)
	files := map[string][]byte{"setup.exe": []byte("the installer")}
	p := n.Publish("moving", "1", files, nstest.Public)
	if _, ok := n.WaitState("ps1", p.ID, api.StateReady, 20*time.Second); !ok {
		t.Fatal("not ready")
	}
	first := r.d.URL()
	r.stop(t)
	cfg.EnrollToken = ""
	anon, _ := apiclient.New(n.URL, "", nil)
	codebaseURL := func() string {
		cb, err := anon.Codebases(t.Context(), p.ID)
		if err != nil || len(cb.Codebases) != 1 {
			t.Fatalf("codebases: %+v, %v", cb, err)
		}
		return cb.Codebases[0].URL
	}
	restart := func(what string, edit func(*ps.Config), hc *http.Client) {
		t.Helper()
		polls := len(n.PollURLs())
		c := cfg
		edit(&c)
		r := start(t, c)
		// The first poll of the restarted PS reports its URL, and the NS
		// records it before it answers that poll.
		waitWithin(t, 5*time.Second, what+": a first poll", func() bool { return len(n.PollURLs()) > polls })
		if got := n.PollURLs()[polls]; got != r.d.URL() {
			t.Fatalf("%s: the first poll reported %q, want %q", what, got, r.d.URL())
		}
		want := r.d.URL() + "/packages/" + p.ID + "/"
		waitWithin(t, 5*time.Second, what+": codebases name the new URL", func() bool { return codebaseURL() == want })
		if r.d.URL() == first {
			t.Fatalf("%s: same URL %s as before", what, first)
		}
		dest := t.TempDir()
		if _, err := client.Get(t.Context(), anon, p.ID, dest, client.Options{HTTPClient: hc}); err != nil {
			t.Fatalf("%s: download through the codebases: %v", what, err)
		}
		r.stop(t)
	}
	restart("another port", func(c *ps.Config) {}, nil)
	certs := tlstest.New(t)
	restart("TLS", func(c *ps.Config) { c.TLSCert, c.TLSKey = certs.Cert, certs.Key },
		&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool}}})
	if !strings.HasPrefix(codebaseURL(), "https://") {
		t.Fatalf("codebase after the TLS restart: %s, want https", codebaseURL())
	}
}
