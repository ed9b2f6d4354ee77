package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
)

// blobLockKey is the PostgreSQL advisory lock key of LockBlobs ("wharf"
// "blob" in ASCII, as one number).
const blobLockKey int64 = 0x7768617266626c6f

// LockBlobs takes the lock that orders package creation against blob
// garbage collection. On PostgreSQL it is a session advisory lock held on a
// connection of its own, so every NS replica on the database waits for it;
// on SQLite (one NS process) a mutex of this store.
func (s *Store) LockBlobs(ctx context.Context) (func(), error) {
	if s.d != &postgresDialect {
		select {
		case s.blobLock <- struct{}{}:
			return func() { <-s.blobLock }, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("lock blobs: %w", ctx.Err())
		}
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock blobs: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, blobLockKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock blobs: %w", err)
	}
	return func() {
		// Unlock even when the caller's context has ended; a connection
		// that cannot unlock is closed, which releases the lock.
		if _, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, blobLockKey); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}
