package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wharf-project/wharf/internal/ns/catalog"
)

// changeChannel is the PostgreSQL notification channel of catalog changes.
const changeChannel = "wharf_catalog_change"

// PGNotifier carries catalog changes between the NS processes on one
// PostgreSQL database: Notify is pg_notify on the pool, Listen holds one
// connection of its own in LISTEN. Build it with (*Store).PGNotifier.
type PGNotifier struct {
	db  *Store
	dsn string
	log *slog.Logger
}

var _ catalog.Notifier = (*PGNotifier)(nil)

// PGNotifier returns the LISTEN/NOTIFY notifier of a PostgreSQL store, or
// an error for SQLite (one process: use notify.Local).
func (s *Store) PGNotifier(log *slog.Logger) (*PGNotifier, error) {
	if s.d != &postgresDialect {
		return nil, fmt.Errorf("LISTEN/NOTIFY needs PostgreSQL, not %s", s.d.name)
	}
	return &PGNotifier{db: s, dsn: s.dsn, log: log.With("component", "pgnotify")}, nil
}

// Notify sends c to every listener on the database (delivered once the
// statement commits: at once, outside a transaction).
func (n *PGNotifier) Notify(ctx context.Context, c catalog.Change) error {
	payload, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if _, err := n.db.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, changeChannel, string(payload)); err != nil {
		return fmt.Errorf("notify %s: %w", changeChannel, err)
	}
	return nil
}

// Listen listens on a connection of its own and calls fn with each change,
// until ctx ends. Each time it starts listening — the first time too,
// since changes made before it listened were not heard — it calls fn with
// PartAll. A lost connection is opened again after a backoff (1 s doubling
// to 30 s).
func (n *PGNotifier) Listen(ctx context.Context, fn func(catalog.Change)) error {
	backoff := time.Second
	for {
		err := n.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.log.Warn("listening for catalog changes failed; listening again", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (n *PGNotifier) listenOnce(ctx context.Context, fn func(catalog.Change)) error {
	conn, err := pgx.Connect(ctx, n.dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fn(catalog.Change{Part: catalog.PartAll})
	for {
		msg, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for a notification: %w", err)
		}
		var c catalog.Change
		if err := json.Unmarshal([]byte(msg.Payload), &c); err != nil || c.Part == "" {
			n.log.Error("unreadable catalog change; reloading everything", "payload", msg.Payload, "err", errors.Join(err, errors.New("no part")))
			c = catalog.Change{Part: catalog.PartAll}
		}
		fn(c)
	}
}
