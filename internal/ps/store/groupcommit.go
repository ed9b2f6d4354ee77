package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// commitGroup runs the relocation engine's small writes (journal steps and
// switches) of packages that move at once in one transaction (group
// commit): one WAL sync for the lot instead of one each. Every caller's
// work runs in a savepoint of its own, so one failing write rolls back only
// itself; each caller returns after the transaction holding its write
// committed, so "durable on return" holds as with a transaction each.
type commitGroup struct {
	db *sql.DB

	mu      sync.Mutex
	running bool
	queue   []*groupWrite
}

type groupWrite struct {
	fn    func(*sql.Tx) error
	after func() // run after the commit, when fn succeeded
	err   error
	done  chan struct{}
}

// do runs fn in a shared transaction and, once that committed, after (which
// may be nil). It returns fn's error, or the commit's.
func (g *commitGroup) do(ctx context.Context, fn func(*sql.Tx) error, after func()) error {
	w := &groupWrite{fn: fn, after: after, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if g.running {
		g.mu.Unlock()
		<-w.done
		return w.err
	}
	// Lead: commit batches until nobody waits, ours first.
	g.running = true
	for len(g.queue) > 0 {
		batch := g.queue
		g.queue = nil
		g.mu.Unlock()
		g.commit(context.WithoutCancel(ctx), batch)
		g.mu.Lock()
	}
	g.running = false
	g.mu.Unlock()
	return w.err
}

func (g *commitGroup) commit(ctx context.Context, batch []*groupWrite) {
	defer func() {
		for _, w := range batch {
			close(w.done)
		}
	}()
	fail := func(err error) {
		for _, w := range batch {
			if w.err == nil {
				w.err = err
			}
		}
	}
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("begin group commit: %w", err))
		return
	}
	defer tx.Rollback()
	for _, w := range batch {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
			fail(fmt.Errorf("group commit savepoint: %w", err))
			return
		}
		if w.err = w.fn(tx); w.err != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO w`); err != nil {
				fail(fmt.Errorf("group commit rollback: %w", err))
				return
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE w`); err != nil {
			fail(fmt.Errorf("group commit release: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("group commit: %w", err))
		return
	}
	for _, w := range batch {
		if w.err == nil && w.after != nil {
			w.after()
		}
	}
}
