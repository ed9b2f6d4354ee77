package ns_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/httpguard"
	"github.com/wharf-project/wharf/internal/ns"
	"github.com/wharf-project/wharf/internal/testenv/slowclient"
)

// TestSlowClientsAreDroppedByTheNS: 200 connections send their request
// header, or their body (a POST /agent/enroll announcing 100 bytes), one
// byte every 100 ms; meanwhile API requests are answered promptly, and
// every slow connection is dropped within the configured timeout (1 s)
// and a margin.
func TestSlowClientsAreDroppedByTheNS(t *testing.T) {
	const timeout = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := ns.Open(ctx, ns.Config{DataDir: t.TempDir(), Limits: httpguard.Limits{HeaderTimeout: timeout, BodyTimeout: timeout}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	addr := ln.Addr().String()
	res := slowclient.Run(slowclient.Attack{
		Addr: addr, Slow: 200, Every: 100 * time.Millisecond, For: 4 * time.Second,
		Header:     "GET /api/v1/packages HTTP/1.1\r\nHost: ns\r\n",
		BodyHeader: "POST /api/v1/agent/enroll HTTP/1.1\r\nHost: ns\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
		Normal: func() (*http.Request, error) {
			return http.NewRequest("GET", "http://"+addr+"/api/v1/packages", nil)
		},
		Client: &http.Client{Timeout: 5 * time.Second},
	})
	report(t, res, timeout)
}

// report checks an attack's result: every normal request answered within
// half a second, every slow connection dropped within timeout + 1 s.
func report(t *testing.T, res slowclient.Result, timeout time.Duration) {
	t.Helper()
	t.Logf("normal requests: %d, slowest %s; slow connections dropped: %d (slowest after %s), still open: %d",
		len(res.Normal), slowclient.Max(res.Normal), len(res.Dropped), slowclient.Max(res.Dropped), res.Alive)
	if res.Failed > 0 || len(res.Normal) < 10 {
		t.Errorf("normal requests: %d answered, %d failed: %v", len(res.Normal), res.Failed, res.Errors)
	}
	if m := slowclient.Max(res.Normal); m > 500*time.Millisecond {
		t.Errorf("the slowest normal request took %s, want under 500 ms", m)
	}
	if res.Alive > 0 || len(res.Dropped) != 200 {
		t.Errorf("slow connections: %d dropped, %d still open after the attack, want all 200 dropped", len(res.Dropped), res.Alive)
	}
	if m := slowclient.Max(res.Dropped); m > timeout+time.Second {
		t.Errorf("a slow connection was dropped after %s, want within %s and a second", m, timeout)
	}
}
