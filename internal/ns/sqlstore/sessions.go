package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

const sessionColumns = `key, username, by_token, password_hash, csrf, created_at, seen_at, flashes`

// CreateSession stores a new console session.
func (s *Store) CreateSession(ctx context.Context, cs catalog.ConsoleSession) error {
	_, err := s.c().exec(ctx, `INSERT INTO console_sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		cs.Key, cs.User, cs.ByToken, cs.PasswordHash, cs.CSRF, s.d.time(cs.Created), s.d.time(cs.Seen), cs.Flashes)
	if err != nil {
		return fmt.Errorf("create console session: %w", err)
	}
	return nil
}

// Session returns the console session of a key, or ErrNotFound.
func (s *Store) Session(ctx context.Context, key string) (catalog.ConsoleSession, error) {
	var cs catalog.ConsoleSession
	err := s.c().queryRow(ctx, `SELECT `+sessionColumns+` FROM console_sessions WHERE key = ?`, key).Scan(
		&cs.Key, &cs.User, &cs.ByToken, &cs.PasswordHash, &cs.CSRF, timeCol{&cs.Created}, timeCol{&cs.Seen}, &cs.Flashes)
	if errors.Is(err, sql.ErrNoRows) {
		return cs, fmt.Errorf("console session: %w", wharf.ErrNotFound)
	}
	if err != nil {
		return cs, fmt.Errorf("console session: %w", err)
	}
	return cs, nil
}

// TouchSession records a use of the session.
func (s *Store) TouchSession(ctx context.Context, key string, seen time.Time) error {
	if _, err := s.c().exec(ctx, `UPDATE console_sessions SET seen_at = ? WHERE key = ?`, s.d.time(seen), key); err != nil {
		return fmt.Errorf("touch console session: %w", err)
	}
	return nil
}

// UpdateSessionFlashes replaces the session's flashes with the result of
// fn applied to them, in one transaction.
func (s *Store) UpdateSessionFlashes(ctx context.Context, key string, fn func(string) string) error {
	err := s.inTx(ctx, func(c conn) error {
		var cur string
		err := c.queryRow(ctx, `SELECT flashes FROM console_sessions WHERE key = ?`+s.d.forUpdate, key).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return wharf.ErrNotFound
		}
		if err != nil {
			return err
		}
		if next := fn(cur); next != cur {
			_, err = c.exec(ctx, `UPDATE console_sessions SET flashes = ? WHERE key = ?`, next, key)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("console session flashes: %w", err)
	}
	return nil
}

// DeleteSession removes a session; a missing one is not an error.
func (s *Store) DeleteSession(ctx context.Context, key string) error {
	if _, err := s.c().exec(ctx, `DELETE FROM console_sessions WHERE key = ?`, key); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions last seen before seenBefore
// or created before createdBefore.
func (s *Store) DeleteExpiredSessions(ctx context.Context, seenBefore, createdBefore time.Time) error {
	if _, err := s.c().exec(ctx, `DELETE FROM console_sessions WHERE seen_at < ? OR created_at < ?`,
		s.d.time(seenBefore), s.d.time(createdBefore)); err != nil {
		return fmt.Errorf("delete expired console sessions: %w", err)
	}
	return nil
}

// TakeLoginToken spends one login attempt from the client's token bucket
// (burst attempts, one more every every) in one transaction; when none is
// left it says how long until one is. Buckets full again are removed when
// a new one is made.
func (s *Store) TakeLoginToken(ctx context.Context, client string, burst int, every time.Duration, now time.Time) (bool, time.Duration, error) {
	var (
		ok   bool
		wait time.Duration
	)
	err := s.inTx(ctx, func(c conn) error {
		res, err := c.exec(ctx, `INSERT INTO login_buckets (client, tokens, at) VALUES (?, ?, ?) ON CONFLICT (client) DO NOTHING`,
			client, float64(burst), s.d.time(now))
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil {
			return err
		} else if n == 1 {
			full := now.Add(-time.Duration(burst) * every)
			if _, err := c.exec(ctx, `DELETE FROM login_buckets WHERE at < ? AND client <> ?`, s.d.time(full), client); err != nil {
				return err
			}
		}
		var (
			tokens float64
			at     time.Time
		)
		if err := c.queryRow(ctx, `SELECT tokens, at FROM login_buckets WHERE client = ?`+s.d.forUpdate, client).Scan(&tokens, timeCol{&at}); err != nil {
			return err
		}
		if d := now.Sub(at); d > 0 {
			tokens = min(tokens+float64(d)/float64(every), float64(burst))
		}
		if tokens < 1 {
			wait = time.Duration((1 - tokens) * float64(every))
		} else {
			tokens--
			ok = true
		}
		_, err = c.exec(ctx, `UPDATE login_buckets SET tokens = ?, at = ? WHERE client = ?`, tokens, s.d.time(now), client)
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("login rate limit of %s: %w", client, err)
	}
	return ok, wait, nil
}
