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

// ---- settings

// SetSetting stores value under key, replacing any value.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	_, err := s.c().exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("set setting %s: %w", key, err)
	}
	return nil
}

// ---- servers

// DeleteServer removes a server and what it reported and was given: its
// package states, overrides, tasks, Package Location Status events and
// health reports (its alerts stay, as history). ErrNotFound when there is no such server.
// Packages assigned to it by name keep the name: a server enrolled again
// under it gets them.
func (s *Store) DeleteServer(ctx context.Context, name wharf.ServerName) error {
	return s.inTx(ctx, func(c conn) error {
		res, err := c.exec(ctx, `DELETE FROM servers WHERE name = ?`, string(name))
		if err != nil {
			return fmt.Errorf("delete server %s: %w", name, err)
		}
		if n, err := affected(res); err != nil {
			return fmt.Errorf("delete server %s: %w", name, err)
		} else if n == 0 {
			return fmt.Errorf("server %s: %w", name, wharf.ErrNotFound)
		}
		for _, q := range []string{
			`DELETE FROM package_states WHERE server_name = ?`,
			`DELETE FROM policies WHERE server = ?`,
			`DELETE FROM server_tasks WHERE server = ?`,
			`DELETE FROM location_latest WHERE server = ?`,
			`DELETE FROM location_history WHERE server = ?`,
			`DELETE FROM server_health WHERE server = ?`,
			`DELETE FROM volume_samples WHERE server = ?`,
		} {
			if _, err := c.exec(ctx, q, string(name)); err != nil {
				return fmt.Errorf("delete server %s: %w", name, err)
			}
		}
		return nil
	})
}

// SetServerCredential replaces a server's credential hash when it is
// still oldHash (a rotation that raced another one fails with
// ErrConflict); ErrNotFound when there is no such server.
func (s *Store) SetServerCredential(ctx context.Context, name wharf.ServerName, oldHash, newHash string) error {
	res, err := s.c().exec(ctx, `UPDATE servers SET credential_hash = ? WHERE name = ? AND credential_hash = ?`, newHash, string(name), oldHash)
	if isUniqueViolation(err) {
		return fmt.Errorf("set credential of %s: %w", name, wharf.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("set credential of %s: %w", name, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("set credential of %s: %w", name, err)
	}
	if n == 0 {
		if _, err := s.Server(ctx, name); err != nil {
			return err
		}
		return fmt.Errorf("set credential of %s: %w", name, wharf.ErrConflict)
	}
	return nil
}

// SetServerURL records the base URL a server serves packages at;
// ErrNotFound when there is no such server.
func (s *Store) SetServerURL(ctx context.Context, name wharf.ServerName, url string) error {
	res, err := s.c().exec(ctx, `UPDATE servers SET url = ? WHERE name = ?`, url, string(name))
	if err != nil {
		return fmt.Errorf("set url of %s: %w", name, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("set url of %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("server %s: %w", name, wharf.ErrNotFound)
	}
	return nil
}

// ---- client tokens

// CreateClientToken stores a client token's name and hash; ErrExists when
// the name is taken.
func (s *Store) CreateClientToken(ctx context.Context, t catalog.ClientToken) error {
	_, err := s.c().exec(ctx, `INSERT INTO client_tokens (name, hash, created_at) VALUES (?, ?, ?)`,
		t.Name, t.Hash, s.d.time(t.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("client token %s: %w", t.Name, wharf.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create client token %s: %w", t.Name, err)
	}
	return nil
}

// ClientTokenByHash returns the client token whose hash is hash, or
// ErrNotFound.
func (s *Store) ClientTokenByHash(ctx context.Context, hash string) (catalog.ClientToken, error) {
	var t catalog.ClientToken
	err := s.c().queryRow(ctx, `SELECT name, hash, created_at FROM client_tokens WHERE hash = ?`, hash).
		Scan(&t.Name, &t.Hash, timeCol{&t.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("client token: %w", wharf.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("client token: %w", err)
	}
	return t, nil
}

// ListClientTokens returns every client token ordered by name.
func (s *Store) ListClientTokens(ctx context.Context) ([]catalog.ClientToken, error) {
	rows, err := s.c().query(ctx, `SELECT name, hash, created_at FROM client_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list client tokens: %w", err)
	}
	defer rows.Close()
	var out []catalog.ClientToken
	for rows.Next() {
		var t catalog.ClientToken
		if err := rows.Scan(&t.Name, &t.Hash, timeCol{&t.CreatedAt}); err != nil {
			return nil, fmt.Errorf("list client tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list client tokens: %w", err)
	}
	return out, nil
}

// DeleteClientToken removes a client token; ErrNotFound for an unknown
// name.
func (s *Store) DeleteClientToken(ctx context.Context, name string) error {
	res, err := s.c().exec(ctx, `DELETE FROM client_tokens WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete client token %s: %w", name, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("delete client token %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("client token %s: %w", name, wharf.ErrNotFound)
	}
	return nil
}

// ---- alerts

// RepeatAlert counts one more occurrence of the unread alert with this
// fingerprint (its count grows, its last_seen_at becomes at) and returns
// it; ErrNotFound when no unread alert has it.
func (s *Store) RepeatAlert(ctx context.Context, fingerprint string, at time.Time) (catalog.Alert, error) {
	a, err := scanAlert(s.c().queryRow(ctx, `UPDATE alerts SET count = count + 1, last_seen_at = ?
		WHERE fingerprint = ? AND read_at IS NULL RETURNING `+alertColumns, s.d.time(at), fingerprint))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("unread alert %s: %w", fingerprint, wharf.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("repeat alert: %w", err)
	}
	return a, nil
}

// CountAlertsSince counts the alerts of a server created at since or
// later (read or not).
func (s *Store) CountAlertsSince(ctx context.Context, server wharf.ServerName, since time.Time) (int, error) {
	var n int
	err := s.c().queryRow(ctx, `SELECT COUNT(*) FROM alerts WHERE server = ? AND created_at >= ?`, string(server), s.d.time(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count alerts of %s: %w", server, err)
	}
	return n, nil
}
