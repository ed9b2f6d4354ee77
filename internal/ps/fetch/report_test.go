package fetch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ps/clock"
)

// statesNS records PutPackageStates calls; fail decides each call's error.
type statesNS struct {
	NS
	mu    sync.Mutex
	calls [][]api.PackageState
	fail  func(call int) error
}

func (n *statesNS) PutPackageStates(_ context.Context, _ string, s []api.PackageState) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, s)
	if n.fail != nil {
		return n.fail(len(n.calls))
	}
	return nil
}

func (n *statesNS) count() (calls, states int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.calls {
		states += len(c)
	}
	return len(n.calls), states
}

type instant struct{}

func (instant) Now() time.Time { return time.Unix(0, 0) }
func (instant) After(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Unix(0, 0)
	return c
}

func newTestReporter(ns *statesNS) *reporter {
	return newReporter(ns, "ps1", instant{}, time.Nanosecond, clock.Backoff{Base: time.Second, Max: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func runReporter(t *testing.T, r *reporter) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitCount(t *testing.T, ns *statesNS, wantCalls, wantStates int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, s := ns.count()
		if c == wantCalls && s == wantStates {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d calls with %d states, want %d with %d", c, s, wantCalls, wantStates)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReporterBatchesAndDedups(t *testing.T) {
	ns := &statesNS{}
	r := newTestReporter(ns)
	for i := range 1500 {
		r.put(api.PackageState{PackageID: fmt.Sprintf("%04d", i), State: api.StateReady})
	}
	runReporter(t, r)
	waitCount(t, ns, 2, 1500)
	// The same states again are not sent; a changed one is.
	r.put(api.PackageState{PackageID: "0001", State: api.StateReady})
	r.put(api.PackageState{PackageID: "0002", State: api.StateFailed, Reason: strings.Repeat("é", 2000)})
	waitCount(t, ns, 3, 1501)
	got := ns.calls[2][0]
	if len(got.Reason) > maxReason || !strings.HasSuffix(got.Reason, "...") {
		t.Errorf("long reason: %d bytes, %q...", len(got.Reason), got.Reason[:10])
	}
}

func TestReporterRetriesTransientDropsRefused(t *testing.T) {
	ns := &statesNS{fail: func(call int) error {
		switch call {
		case 1:
			return fmt.Errorf("POST: %w", io.ErrUnexpectedEOF) // network: retried
		case 2:
			return &apiclient.Error{Status: 503, Message: "busy"} // retried
		case 3:
			return nil
		case 4:
			return &apiclient.Error{Status: 400, Message: "bad"} // refused: dropped
		}
		return nil
	}}
	r := newTestReporter(ns)
	runReporter(t, r)
	r.put(api.PackageState{PackageID: "a", State: api.StateReady})
	waitCount(t, ns, 3, 3)
	r.put(api.PackageState{PackageID: "b", State: api.StateReady})
	waitCount(t, ns, 4, 4)
	time.Sleep(50 * time.Millisecond)
	if c, _ := ns.count(); c != 4 {
		t.Errorf("a refused report was sent again: %d calls", c)
	}
}
