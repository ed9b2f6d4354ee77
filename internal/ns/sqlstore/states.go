package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

// PutPackageStates upserts the states, keyed by server and package, in one
// transaction; of two states with the same key the later one wins. States
// for packages that do not exist are dropped. The packages kept are locked
// until the transaction ends, so a concurrent DeletePackage cannot make the
// insert fail.
func (s *Store) PutPackageStates(ctx context.Context, states []catalog.PackageState) error {
	if len(states) == 0 {
		return nil
	}
	type key struct {
		server wharf.ServerName
		pkg    wharf.PackageID
	}
	last := make(map[key]int, len(states))
	var ids []any
	seenID := make(map[wharf.PackageID]bool)
	for i, st := range states {
		last[key{st.Server, st.PackageID}] = i
		if !seenID[st.PackageID] {
			seenID[st.PackageID] = true
			ids = append(ids, string(st.PackageID))
		}
	}
	err := s.inTx(ctx, func(c conn) error {
		exists := make(map[wharf.PackageID]bool, len(ids))
		for len(ids) > 0 {
			batch := ids[:min(len(ids), insertBatch)]
			ids = ids[len(batch):]
			rows, err := c.query(ctx, `SELECT id FROM packages WHERE id IN (`+placeholders(len(batch))+`)`+c.d.keyShare, batch...)
			if err != nil {
				return fmt.Errorf("look up packages: %w", err)
			}
			for rows.Next() {
				var id wharf.PackageID
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return fmt.Errorf("look up packages: %w", err)
				}
				exists[id] = true
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return fmt.Errorf("look up packages: %w", err)
			}
		}
		var rows [][]any
		for i, st := range states {
			if last[key{st.Server, st.PackageID}] != i || !exists[st.PackageID] {
				continue
			}
			rows = append(rows, []any{string(st.Server), string(st.PackageID), st.State, st.Reason, st.Path, c.d.time(st.UpdatedAt)})
		}
		return c.insertRows(ctx, `INSERT INTO package_states (server_name, package_id, state, reason, path, updated_at) VALUES `,
			` ON CONFLICT (server_name, package_id) DO UPDATE SET
				state = excluded.state, reason = excluded.reason, path = excluded.path, updated_at = excluded.updated_at`,
			rows)
	})
	if err != nil {
		return fmt.Errorf("put %d package states: %w", len(states), err)
	}
	return nil
}

// PackageStates returns matching states ordered by server, then package.
func (s *Store) PackageStates(ctx context.Context, f catalog.StateFilter) ([]catalog.PackageState, error) {
	var conds []string
	var args []any
	if f.Server != "" {
		conds = append(conds, `server_name = ?`)
		args = append(args, string(f.Server))
	}
	if f.PackageID != "" {
		conds = append(conds, `package_id = ?`)
		args = append(args, string(f.PackageID))
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	page := ""
	if f.Limit > 0 {
		page = fmt.Sprintf(` LIMIT %d OFFSET %d`, f.Limit, max(f.Offset, 0))
	}
	rows, err := s.c().query(ctx, `SELECT server_name, package_id, state, reason, path, updated_at FROM package_states`+
		where+` ORDER BY server_name, package_id`+page, args...)
	if err != nil {
		return nil, fmt.Errorf("list package states: %w", err)
	}
	defer rows.Close()
	var list []catalog.PackageState
	for rows.Next() {
		var st catalog.PackageState
		if err := rows.Scan(&st.Server, &st.PackageID, &st.State, &st.Reason, &st.Path, timeCol{&st.UpdatedAt}); err != nil {
			return nil, fmt.Errorf("list package states: %w", err)
		}
		list = append(list, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list package states: %w", err)
	}
	return list, nil
}

// CountStates counts the states f matches, by state.
func (s *Store) CountStates(ctx context.Context, f catalog.StateFilter) (map[string]int, error) {
	var conds []string
	var args []any
	if f.Server != "" {
		conds = append(conds, `server_name = ?`)
		args = append(args, string(f.Server))
	}
	if f.PackageID != "" {
		conds = append(conds, `package_id = ?`)
		args = append(args, string(f.PackageID))
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	rows, err := s.c().query(ctx, `SELECT state, COUNT(*) FROM package_states`+where+` GROUP BY state`, args...)
	if err != nil {
		return nil, fmt.Errorf("count package states: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count package states: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count package states: %w", err)
	}
	return out, nil
}
