// Package notify wakes the Notification Server's long polls when something
// in the catalog changes. Local is the single-process implementation; a
// PostgreSQL LISTEN/NOTIFY one will let several NS processes wake each
// other's polls behind the same two methods.
package notify

import "sync"

// Local broadcasts changes to waiters in this process. The zero value is
// not usable; use NewLocal. It is safe for concurrent use.
type Local struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewLocal returns a ready notifier.
func NewLocal() *Local { return &Local{ch: make(chan struct{})} }

// Changed returns a channel that is closed at the next Notify. Take it
// before reading the state you compare, so no change is missed between the
// read and the wait.
func (l *Local) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ch
}

// Notify wakes every waiter.
func (l *Local) Notify() {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.ch)
	l.ch = make(chan struct{})
}
