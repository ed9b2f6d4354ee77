package httpguard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/testenv/slowclient"
)

func serve(t *testing.T, l Limits, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.Server(h, slog.New(slog.DiscardHandler))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// echo reads the whole body and answers its length; a body that fails is
// a 400.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprint(w, n)
})

// TestSlowClientsAreDropped: slow header and body clients are dropped
// within their timeouts while normal requests are answered at once.
func TestSlowClientsAreDropped(t *testing.T) {
	l := Limits{HeaderTimeout: 500 * time.Millisecond, BodyTimeout: 500 * time.Millisecond}
	addr := serve(t, l, echo)
	res := slowclient.Run(slowclient.Attack{
		Addr: addr, Slow: 60, Every: 50 * time.Millisecond, For: 2 * time.Second,
		Header:     "POST / HTTP/1.1\r\nHost: x\r\n",
		BodyHeader: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
		Normal: func() (*http.Request, error) {
			return http.NewRequest("POST", "http://"+addr+"/", strings.NewReader("hello"))
		},
		Client: &http.Client{Timeout: 5 * time.Second},
	})
	if res.Failed > 0 || len(res.Normal) == 0 {
		t.Fatalf("normal requests: %d answered, %d failed: %v", len(res.Normal), res.Failed, res.Errors)
	}
	if res.Alive > 0 || len(res.Dropped) != 60 {
		t.Fatalf("slow clients: %d dropped, %d still open", len(res.Dropped), res.Alive)
	}
	if m := slowclient.Max(res.Dropped); m > time.Second+500*time.Millisecond {
		t.Fatalf("the slowest drop took %s, want about the 500 ms timeout", m)
	}
	if m := slowclient.Max(res.Normal); m > 500*time.Millisecond {
		t.Fatalf("a normal request took %s", m)
	}
}

// TestLongBodyAtARateIsNotCut: a body well past BodyTimeout that keeps up
// MinBodyRate arrives whole; a long poll after a body is not cut by the
// body's deadline.
func TestLongBodyAtARateIsNotCut(t *testing.T) {
	l := Limits{BodyTimeout: 300 * time.Millisecond, MinBodyRate: 10 << 10}
	addr := serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		select { // a long poll after the body
		case <-time.After(time.Second):
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, n)
	}))
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 4<<10) // 40 KiB/s, 1.2 s in all: four times BodyTimeout
		for i := 0; i < 12; i++ {
			pw.Write(chunk)
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequestWithContext(context.Background(), "POST", "http://"+addr+"/", pr)
	req.ContentLength = 12 * 4 << 10
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != fmt.Sprint(12*4<<10) {
		t.Fatalf("a body at a good rate: %d %s", resp.StatusCode, body)
	}
}

// TestTooManyPendingClosesTheOldest: past MaxPending, the connection that
// has waited longest is closed; a prompt request still gets through.
func TestTooManyPendingClosesTheOldest(t *testing.T) {
	l := Limits{HeaderTimeout: time.Minute, MaxPending: 10}
	addr := serve(t, l, echo)
	var conns []net.Conn
	for i := 0; i < 10; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET / HTTP/1.1\r\n"))
		conns = append(conns, c)
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a prompt request past the limit: %v", err)
	}
	resp.Body.Close()
	conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the oldest pending connection: read %v, want EOF (closed)", err)
	}
	conns[9].SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := conns[9].Read(make([]byte, 1)); err == io.EOF {
		t.Fatal("the newest pending connection was closed")
	}
}

// TestFileLimits: the [limits] section sets what it names and refuses bad
// values, naming each.
func TestFileLimits(t *testing.T) {
	s, n := "3s", 10
	var l Limits
	if err := (File{HeaderTimeout: &s, MaxPending: &n}).Apply(&l); err != nil || l.HeaderTimeout != 3*time.Second || l.MaxPending != 10 || l.BodyTimeout != 0 {
		t.Fatalf("Apply: %+v, %v", l, err)
	}
	bad, zero := "soon", 0
	err := (File{BodyTimeout: &bad, IdleTimeout: &bad, MaxPending: &zero}).Apply(&l)
	for _, key := range []string{"limits.body_timeout", "limits.idle_timeout", "limits.max_pending"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Apply of bad values: %v, want it to name %s", err, key)
		}
	}
	if d := (Limits{}).WithDefaults(); d.HeaderTimeout != DefaultHeaderTimeout || d.MaxPending != DefaultMaxPending {
		t.Errorf("defaults: %+v", d)
	}
}
