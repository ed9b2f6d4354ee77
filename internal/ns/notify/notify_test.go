package notify

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ns/catalog"
)

func TestLocalDeliversToEveryListenerInOrder(t *testing.T) {
	l := NewLocal()
	ctx, cancel := context.WithCancel(context.Background())
	got := [2]chan catalog.Change{make(chan catalog.Change, 10), make(chan catalog.Change, 10)}
	done := make(chan error, 2)
	for i := range got {
		go func() { done <- l.Listen(ctx, func(c catalog.Change) { got[i] <- c }) }()
	}
	// Wait until both listen: a change notified before is not delivered.
	for {
		l.mu.Lock()
		n := len(l.listeners)
		l.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	sent := []catalog.Change{{Part: catalog.PartServer, Server: "ps-1"}, {Part: catalog.PartPolicies}}
	for _, c := range sent {
		if err := l.Notify(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range got {
		for _, want := range sent {
			select {
			case c := <-got[i]:
				if c != want {
					t.Fatalf("listener %d got %+v, want %+v", i, c, want)
				}
			default:
				t.Fatalf("listener %d: %+v not delivered when Notify returned", i, want)
			}
		}
	}
	cancel()
	for range got {
		if err := <-done; err != context.Canceled {
			t.Fatalf("Listen returned %v, want context.Canceled", err)
		}
	}
	if len(l.listeners) != 0 {
		t.Fatalf("%d listeners left after their contexts ended", len(l.listeners))
	}
}
