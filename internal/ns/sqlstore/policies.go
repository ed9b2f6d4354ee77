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

// Policy returns the policy of a kind for a server ("" for the global one),
// or an error wrapping ErrNotFound.
func (s *Store) Policy(ctx context.Context, server wharf.ServerName, kind string) (catalog.PolicyRecord, error) {
	r := catalog.PolicyRecord{Server: server, Kind: kind}
	err := s.c().queryRow(ctx, `SELECT data, version, updated_at FROM policies WHERE server = ? AND kind = ?`,
		string(server), kind).Scan(&r.Data, &r.Version, timeCol{&r.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("policy %s of %q: %w", kind, server, wharf.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("policy %s of %q: %w", kind, server, err)
	}
	return r, nil
}

// PutPolicy stores data as the policy when its stored version is
// expectVersion (0: no policy stored yet), with the version one higher. It
// fails with ErrConflict when another writer changed it first.
func (s *Store) PutPolicy(ctx context.Context, server wharf.ServerName, kind, data string, expectVersion int64, at time.Time) (catalog.PolicyRecord, error) {
	var res sql.Result
	var err error
	if expectVersion == 0 {
		res, err = s.c().exec(ctx, `INSERT INTO policies (server, kind, data, version, updated_at) VALUES (?, ?, ?, 1, ?)
			ON CONFLICT (server, kind) DO NOTHING`, string(server), kind, data, s.d.time(at))
	} else {
		res, err = s.c().exec(ctx, `UPDATE policies SET data = ?, version = version + 1, updated_at = ?
			WHERE server = ? AND kind = ? AND version = ?`, data, s.d.time(at), string(server), kind, expectVersion)
	}
	if err != nil {
		return catalog.PolicyRecord{}, fmt.Errorf("put policy %s of %q: %w", kind, server, err)
	}
	n, err := affected(res)
	if err != nil {
		return catalog.PolicyRecord{}, fmt.Errorf("put policy %s of %q: %w", kind, server, err)
	}
	if n == 0 {
		return catalog.PolicyRecord{}, fmt.Errorf("put policy %s of %q: version %d: %w", kind, server, expectVersion, wharf.ErrConflict)
	}
	return catalog.PolicyRecord{Server: server, Kind: kind, Data: data, Version: expectVersion + 1, UpdatedAt: normTime(at)}, nil
}

// DeletePolicy removes a policy; ErrNotFound when there is none.
func (s *Store) DeletePolicy(ctx context.Context, server wharf.ServerName, kind string) error {
	res, err := s.c().exec(ctx, `DELETE FROM policies WHERE server = ? AND kind = ?`, string(server), kind)
	if err != nil {
		return fmt.Errorf("delete policy %s of %q: %w", kind, server, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("delete policy %s of %q: %w", kind, server, err)
	}
	if n == 0 {
		return fmt.Errorf("policy %s of %q: %w", kind, server, wharf.ErrNotFound)
	}
	return nil
}

// ListPolicies returns every stored policy ordered by server, then kind.
func (s *Store) ListPolicies(ctx context.Context) ([]catalog.PolicyRecord, error) {
	rows, err := s.c().query(ctx, `SELECT server, kind, data, version, updated_at FROM policies ORDER BY server, kind`)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	defer rows.Close()
	var out []catalog.PolicyRecord
	for rows.Next() {
		var r catalog.PolicyRecord
		if err := rows.Scan(&r.Server, &r.Kind, &r.Data, &r.Version, timeCol{&r.UpdatedAt}); err != nil {
			return nil, fmt.Errorf("list policies: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return out, nil
}
