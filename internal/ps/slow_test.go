package ps_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/httpguard"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
	"github.com/wharf-project/wharf/internal/testenv/slowclient"
)

// TestSlowClientsAreDroppedByThePS: 200 connections to the package
// listener send their request header, or the body of a GET that announces
// one, one byte every 100 ms; meanwhile package downloads are answered
// promptly, and every slow connection is dropped within the configured
// timeout (1 s) and a margin.
func TestSlowClientsAreDroppedByThePS(t *testing.T) {
	const timeout = time.Second
	n := nstest.New(t)
	cfg := realNSConfig(t, n)
	cfg.Limits = httpguard.Limits{HeaderTimeout: timeout, BodyTimeout: timeout}
	r := start(t, cfg)
	p := n.Publish("served", "1", map[string][]byte{"setup.exe": []byte(strings.Repeat("MZ", 10_000))}, nstest.Public)
	if _, ok := n.WaitState("ps1", p.ID, api.StateReady, 20*time.Second); !ok {
		t.Fatal("not ready")
	}
	addr := r.d.Addr()
	file := "/packages/" + p.ID + "/setup.exe"
	res := slowclient.Run(slowclient.Attack{
		Addr: addr, Slow: 200, Every: 100 * time.Millisecond, For: 4 * time.Second,
		Header:     "GET " + file + " HTTP/1.1\r\nHost: ps\r\n",
		BodyHeader: "GET " + file + " HTTP/1.1\r\nHost: ps\r\nContent-Length: 100\r\n\r\n",
		Normal: func() (*http.Request, error) {
			return http.NewRequest("GET", "http://"+addr+file, nil)
		},
		Client: &http.Client{Timeout: 5 * time.Second},
	})
	t.Logf("normal downloads: %d, slowest %s; slow connections dropped: %d (slowest after %s), still open: %d",
		len(res.Normal), slowclient.Max(res.Normal), len(res.Dropped), slowclient.Max(res.Dropped), res.Alive)
	if res.Failed > 0 || len(res.Normal) < 10 {
		t.Errorf("normal downloads: %d answered, %d failed: %v", len(res.Normal), res.Failed, res.Errors)
	}
	if m := slowclient.Max(res.Normal); m > 500*time.Millisecond {
		t.Errorf("the slowest normal download took %s, want under 500 ms", m)
	}
	if res.Alive > 0 || len(res.Dropped) != 200 {
		t.Errorf("slow connections: %d dropped, %d still open after the attack, want all 200 dropped", len(res.Dropped), res.Alive)
	}
	if m := slowclient.Max(res.Dropped); m > timeout+time.Second {
		t.Errorf("a slow connection was dropped after %s, want within %s and a second", m, timeout)
	}
}
