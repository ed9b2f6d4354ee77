package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

// CreateEnrollToken stores the hash of a one-time enrollment token that
// expires at expires. It fails with ErrExists when the hash is stored
// already.
func (s *Store) CreateEnrollToken(ctx context.Context, hash string, expires time.Time) error {
	_, err := s.c().exec(ctx, `INSERT INTO enroll_tokens (hash, expires_at) VALUES (?, ?)`, hash, s.d.time(expires))
	if isUniqueViolation(err) {
		return fmt.Errorf("create enroll token: %w", wharf.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create enroll token: %w", err)
	}
	return nil
}

// ConsumeEnrollToken marks the token used at now, in one conditional
// UPDATE, so of two racing calls with one token only one succeeds. It fails
// with ErrNotFound when the token is unknown, already used, or expired at
// now (a token expiring exactly at now is expired).
func (s *Store) ConsumeEnrollToken(ctx context.Context, hash string, now time.Time) error {
	res, err := s.c().exec(ctx, `UPDATE enroll_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?`,
		s.d.time(now), hash, s.d.time(now))
	if err != nil {
		return fmt.Errorf("consume enroll token: %w", err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("consume enroll token: %w", err)
	}
	if n == 0 {
		return wharf.Errorf(wharf.ErrNotFound, "enroll token unknown, used or expired")
	}
	return nil
}

// serverColumns are the columns scanServer reads, in order.
const serverColumns = `name, os, url, credential_hash, signing_key, enrolled_at, last_contact`

// CreateServer enrolls srv. It fails with ErrExists when the name (or,
// against all odds, the credential hash) is taken.
func (s *Store) CreateServer(ctx context.Context, srv catalog.Server) error {
	key := srv.SigningKey
	if key == nil {
		key = []byte{} // NOT NULL column; the driver binds nil as NULL
	}
	_, err := s.c().exec(ctx, `INSERT INTO servers (`+serverColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		string(srv.Name), srv.OS, srv.URL, srv.CredentialHash, key, s.d.time(srv.EnrolledAt), s.d.nullTime(srv.LastContact))
	if isUniqueViolation(err) {
		return fmt.Errorf("create server %s: %w", srv.Name, wharf.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create server %s: %w", srv.Name, err)
	}
	return nil
}

// Server returns the server named name, or an error wrapping ErrNotFound.
func (s *Store) Server(ctx context.Context, name wharf.ServerName) (catalog.Server, error) {
	srv, err := scanServer(s.c().queryRow(ctx, `SELECT `+serverColumns+` FROM servers WHERE name = ?`, string(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Server{}, fmt.Errorf("server %s: %w", name, wharf.ErrNotFound)
	}
	if err != nil {
		return catalog.Server{}, fmt.Errorf("server %s: %w", name, err)
	}
	return srv, nil
}

// ServerByCredential returns the server whose credential hashes to hash, or
// an error wrapping ErrNotFound.
func (s *Store) ServerByCredential(ctx context.Context, hash string) (catalog.Server, error) {
	srv, err := scanServer(s.c().queryRow(ctx, `SELECT `+serverColumns+` FROM servers WHERE credential_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Server{}, fmt.Errorf("server by credential: %w", wharf.ErrNotFound)
	}
	if err != nil {
		return catalog.Server{}, fmt.Errorf("server by credential: %w", err)
	}
	return srv, nil
}

// ListServers returns every server ordered by name.
func (s *Store) ListServers(ctx context.Context) ([]catalog.Server, error) {
	rows, err := s.c().query(ctx, `SELECT `+serverColumns+` FROM servers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	defer rows.Close()
	var list []catalog.Server
	for rows.Next() {
		srv, err := scanServer(rows)
		if err != nil {
			return nil, fmt.Errorf("list servers: %w", err)
		}
		list = append(list, srv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	return list, nil
}

// TouchServer records a contact from the server at the given time. The
// recorded time never goes back: a touch older than the last one (calls
// finishing out of order) leaves it as it is.
func (s *Store) TouchServer(ctx context.Context, name wharf.ServerName, at time.Time) error {
	t := s.d.time(at)
	res, err := s.c().exec(ctx, `UPDATE servers
		SET last_contact = CASE WHEN last_contact IS NULL OR last_contact < ? THEN ? ELSE last_contact END
		WHERE name = ?`, t, t, string(name))
	if err != nil {
		return fmt.Errorf("touch server %s: %w", name, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("touch server %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("touch server %s: %w", name, wharf.ErrNotFound)
	}
	return nil
}

// scanServer reads the serverColumns of one row. An empty signing key
// comes back nil.
func scanServer(row interface{ Scan(...any) error }) (catalog.Server, error) {
	var srv catalog.Server
	err := row.Scan(&srv.Name, &srv.OS, &srv.URL, &srv.CredentialHash, &srv.SigningKey,
		timeCol{&srv.EnrolledAt}, timeCol{&srv.LastContact})
	if len(srv.SigningKey) == 0 {
		srv.SigningKey = nil
	}
	return srv, err
}

// TouchServers records many contacts in one transaction; like TouchServer
// the recorded time never goes back, and unknown servers are skipped.
func (s *Store) TouchServers(ctx context.Context, contacts map[wharf.ServerName]time.Time) error {
	if len(contacts) == 0 {
		return nil
	}
	names := make([]wharf.ServerName, 0, len(contacts))
	for n := range contacts {
		names = append(names, n)
	}
	slices.Sort(names) // the same lock order in every writer
	err := s.inTx(ctx, func(c conn) error {
		// One statement, prepared once for the whole batch.
		stmt, err := c.q.(*sql.Tx).PrepareContext(ctx, s.d.rebind(`UPDATE servers
			SET last_contact = CASE WHEN last_contact IS NULL OR last_contact < ? THEN ? ELSE last_contact END
			WHERE name = ?`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, n := range names {
			t := s.d.time(contacts[n])
			if _, err := stmt.ExecContext(ctx, t, t, string(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch %d servers: %w", len(contacts), err)
	}
	return nil
}
