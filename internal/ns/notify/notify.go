// Package notify carries the catalog's changes between the catalogs of one
// process: Local is the catalog.Notifier of a single-process NS (SQLite,
// the default). Between NS replicas on PostgreSQL, package sqlstore's
// LISTEN/NOTIFY notifier does the same job behind the same interface.
package notify

import (
	"context"
	"sync"

	"github.com/wharf-project/wharf/internal/ns/catalog"
)

// Local delivers changes to the listeners of this process, synchronously
// and in order. Use NewLocal. It is safe for concurrent use.
type Local struct {
	mu        sync.Mutex // held while delivering, so changes arrive in order
	listeners map[int]func(catalog.Change)
	next      int
}

var _ catalog.Notifier = (*Local)(nil)

// NewLocal returns a notifier with no listeners.
func NewLocal() *Local { return &Local{listeners: map[int]func(catalog.Change){}} }

// Notify calls every listener with c before it returns.
func (l *Local) Notify(_ context.Context, c catalog.Change) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, fn := range l.listeners {
		fn(c)
	}
	return nil
}

// Listen calls fn with every change notified until ctx ends. Changes are
// never lost in one process, so it never sends PartAll.
func (l *Local) Listen(ctx context.Context, fn func(catalog.Change)) error {
	l.mu.Lock()
	id := l.next
	l.next++
	l.listeners[id] = fn
	l.mu.Unlock()
	<-ctx.Done()
	l.mu.Lock()
	delete(l.listeners, id)
	l.mu.Unlock()
	return ctx.Err()
}
