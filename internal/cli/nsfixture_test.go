package cli

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ns"
)

// testNS is a real Notification Server (SQLite in a temp folder) served
// in-process on loopback, for the commands that talk to one.
type testNS struct {
	t     *testing.T
	url   string
	token string
	admin *apiclient.Client
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	srv, err := ns.Open(ctx, ns.Config{DataDir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	tok, err := os.ReadFile(filepath.Join(dir, ns.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	n := &testNS{t: t, url: "http://" + ln.Addr().String(), token: strings.TrimSpace(string(tok))}
	if n.admin, err = apiclient.New(n.url, n.token, nil); err != nil {
		t.Fatal(err)
	}
	return n
}

// wharf runs `wharf args...` in-process against the NS and returns its
// exit status and output.
func (n *testNS) wharf(args ...string) (code int, stdout, stderr string) {
	n.t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--ns", n.url, "--token", n.token)
	code = Main(n.t.Context(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// enroll enrolls a Package Server that exists only as its agent client.
func (n *testNS) enroll(name, os string) *apiclient.Client {
	n.t.Helper()
	ctx := n.t.Context()
	tok, err := n.admin.CreateEnrollToken(ctx)
	if err != nil {
		n.t.Fatal(err)
	}
	anon, err := apiclient.New(n.url, "", nil)
	if err != nil {
		n.t.Fatal(err)
	}
	enr, err := anon.Enroll(ctx, api.EnrollRequest{Token: tok.Token, Name: name, OS: os, URL: "http://" + name + ":8081"})
	if err != nil {
		n.t.Fatal(err)
	}
	agent, err := apiclient.New(n.url, enr.Credential, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	return agent
}

// event posts a Package Location Status event as server name.
func (n *testNS) event(agent *apiclient.Client, name string, ev api.LocationStatus) {
	n.t.Helper()
	if ev.LastAttempt.IsZero() {
		ev.LastAttempt = time.Now().UTC()
	}
	if err := agent.PostLocationStatus(n.t.Context(), name, ev); err != nil {
		n.t.Fatalf("post location status: %v", err)
	}
}

// answerTasks answers server name's check-location tasks with the plan
// answer returns, as a Package Server would, until the test ends.
func (n *testNS) answerTasks(agent *apiclient.Client, name string, answer func(path string) api.LocationPlan) {
	ctx := n.t.Context()
	go func() {
		done := map[string]bool{}
		etag := ""
		for ctx.Err() == nil {
			cfg, tag, _, err := agent.AgentConfig(ctx, name, etag, 5*time.Second)
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			etag = tag
			for _, t := range cfg.Tasks {
				if done[t.ID] || t.Type != api.TaskCheckLocation {
					continue
				}
				done[t.ID] = true
				plan := answer(t.Path)
				_ = agent.CompleteTask(ctx, name, t.ID, api.TaskResult{Plan: &plan})
			}
		}
	}()
}
