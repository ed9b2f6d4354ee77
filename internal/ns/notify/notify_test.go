package notify

import (
	"testing"
	"time"
)

func TestNotifyWakesEveryWaiter(t *testing.T) {
	l := NewLocal()
	a, b := l.Changed(), l.Changed()
	select {
	case <-a:
		t.Fatal("woken before Notify")
	default:
	}
	l.Notify()
	for _, ch := range []<-chan struct{}{a, b} {
		select {
		case <-ch:
		case <-time.After(time.Second):
			t.Fatal("waiter not woken by Notify")
		}
	}
	select {
	case <-l.Changed():
		t.Fatal("a channel taken after Notify is already closed")
	default:
	}
}
