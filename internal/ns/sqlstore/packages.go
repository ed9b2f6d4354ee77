package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

// packageColumns are the columns scanPackage reads, in order.
const packageColumns = `p.id, p.name, p.version, p.size, p.file_count, p.assign_all, p.custom_location, p.signed, p.created_at`

// CreatePackage stores p with its files and assignment in one transaction.
// Size and FileCount are computed from p.Files; the values in p are
// ignored. Servers are stored only when AssignAll is false, without
// duplicates. It fails with ErrExists when a package of the same name and
// version (or id) exists.
func (s *Store) CreatePackage(ctx context.Context, p catalog.Package) error {
	var size int64
	for _, f := range p.Files {
		size += f.Size
	}
	var servers []wharf.ServerName
	if !p.AssignAll {
		servers = slices.Clone(p.Servers)
		slices.Sort(servers)
		servers = slices.Compact(servers)
	}
	err := s.inTx(ctx, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO packages (id, name, version, size, file_count, assign_all, custom_location, signed, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			string(p.ID), p.Name, p.Version, size, len(p.Files), p.AssignAll, p.CustomLocation, p.Signed, c.d.time(p.CreatedAt))
		if isUniqueViolation(err) {
			return wharf.ErrExists
		}
		if err != nil {
			return err
		}
		files := make([][]any, len(p.Files))
		for i, f := range p.Files {
			files[i] = []any{string(p.ID), f.Path, f.Size, string(f.SHA256)}
		}
		if err := c.insertRows(ctx, `INSERT INTO package_files (package_id, path, size, sha256) VALUES `, "", files); err != nil {
			return fmt.Errorf("insert files: %w", err)
		}
		rows := make([][]any, len(servers))
		for i, name := range servers {
			rows[i] = []any{string(p.ID), string(name)}
		}
		if err := c.insertRows(ctx, `INSERT INTO package_servers (package_id, server_name) VALUES `, "", rows); err != nil {
			return fmt.Errorf("insert assignment: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create package %s %s (%s): %w", p.Name, p.Version, p.ID, err)
	}
	return nil
}

// Package returns the package with its files sorted by path and its
// servers sorted by name.
func (s *Store) Package(ctx context.Context, id wharf.PackageID) (catalog.Package, error) {
	var p catalog.Package
	err := s.inReadTx(ctx, func(c conn) error {
		var err error
		p, err = scanPackage(c.queryRow(ctx, `SELECT `+packageColumns+` FROM packages p WHERE p.id = ?`, string(id)))
		if errors.Is(err, sql.ErrNoRows) {
			return wharf.ErrNotFound
		}
		if err != nil {
			return err
		}
		if p.Files, err = c.files(ctx, id); err != nil {
			return err
		}
		if !p.AssignAll {
			p.Servers, err = c.servers(ctx, id)
		}
		return err
	})
	if err != nil {
		return catalog.Package{}, fmt.Errorf("package %s: %w", id, err)
	}
	return p, nil
}

func (c conn) files(ctx context.Context, id wharf.PackageID) ([]wharf.File, error) {
	rows, err := c.query(ctx, `SELECT path, size, sha256 FROM package_files WHERE package_id = ? ORDER BY path`, string(id))
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	defer rows.Close()
	var files []wharf.File
	for rows.Next() {
		var f wharf.File
		if err := rows.Scan(&f.Path, &f.Size, &f.SHA256); err != nil {
			return nil, fmt.Errorf("list files: %w", err)
		}
		files = append(files, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	return files, nil
}

func (c conn) servers(ctx context.Context, id wharf.PackageID) ([]wharf.ServerName, error) {
	rows, err := c.query(ctx, `SELECT server_name FROM package_servers WHERE package_id = ? ORDER BY server_name`, string(id))
	if err != nil {
		return nil, fmt.Errorf("list assigned servers: %w", err)
	}
	defer rows.Close()
	var names []wharf.ServerName
	for rows.Next() {
		var name wharf.ServerName
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list assigned servers: %w", err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list assigned servers: %w", err)
	}
	return names, nil
}

// ListPackages returns matching packages without their files, ordered by
// name, then creation time (then id, so the order is total).
func (s *Store) ListPackages(ctx context.Context, f catalog.PackageFilter) ([]catalog.Package, error) {
	where, args := packageWhere(s.d, f)
	page := ""
	if f.Limit > 0 {
		page = fmt.Sprintf(` LIMIT %d OFFSET %d`, f.Limit, max(f.Offset, 0))
	} else if f.Offset > 0 {
		page = fmt.Sprintf(` LIMIT -1 OFFSET %d`, f.Offset)
		if s.d.name == "postgres" {
			page = fmt.Sprintf(` OFFSET %d`, f.Offset)
		}
	}
	var pkgs []catalog.Package
	err := s.inReadTx(ctx, func(c conn) error {
		rows, err := c.query(ctx, `SELECT `+packageColumns+` FROM packages p`+where+` ORDER BY p.name, p.created_at, p.id`+page, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := make(map[wharf.PackageID]int)
		for rows.Next() {
			p, err := scanPackage(rows)
			if err != nil {
				return err
			}
			index[p.ID] = len(pkgs)
			pkgs = append(pkgs, p)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()

		// The assigned servers of the packages of this page only.
		var ids []any
		for _, p := range pkgs {
			if !p.AssignAll {
				ids = append(ids, string(p.ID))
			}
		}
		if len(ids) == 0 {
			return nil
		}
		q := `SELECT s.package_id, s.server_name FROM package_servers s ORDER BY s.server_name`
		if len(ids) <= insertBatch {
			q = `SELECT s.package_id, s.server_name FROM package_servers s WHERE s.package_id IN (` + placeholders(len(ids)) + `) ORDER BY s.server_name`
		} else {
			ids = nil // a large page: read them all once
		}
		rows, err = c.query(ctx, q, ids...)
		if err != nil {
			return fmt.Errorf("list assigned servers: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id wharf.PackageID
			var name wharf.ServerName
			if err := rows.Scan(&id, &name); err != nil {
				return fmt.Errorf("list assigned servers: %w", err)
			}
			if i, ok := index[id]; ok && !pkgs[i].AssignAll {
				pkgs[i].Servers = append(pkgs[i].Servers, name)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list assigned servers: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packages: %w", err)
	}
	return pkgs, nil
}

// packageWhere is the WHERE clause of f (without paging) over packages p.
func packageWhere(d *dialect, f catalog.PackageFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Name != "" {
		conds = append(conds, `p.name = ?`)
		args = append(args, f.Name)
	}
	if f.Version != "" {
		conds = append(conds, `p.version = ?`)
		args = append(args, f.Version)
	}
	if f.PublicOnly {
		conds = append(conds, `NOT p.signed`)
	}
	if f.AssignedTo != "" {
		conds = append(conds, `(p.assign_all OR EXISTS (SELECT 1 FROM package_servers a WHERE a.package_id = p.id AND a.server_name = ?))`)
		args = append(args, string(f.AssignedTo))
	}
	// Each word of the query must be in the name, the version or the id.
	// SQLite's LIKE ignores the case of ASCII letters; PostgreSQL's ILIKE
	// does the same.
	like := "LIKE"
	if d.name == "postgres" {
		like = "ILIKE"
	}
	for _, word := range strings.Fields(f.Query) {
		pat := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(word) + "%"
		conds = append(conds, `(p.name `+like+` ? ESCAPE '\' OR p.version `+like+` ? ESCAPE '\' OR p.id `+like+` ? ESCAPE '\')`)
		args = append(args, pat, pat, pat)
	}
	if f.IDs != nil {
		if len(f.IDs) == 0 {
			conds = append(conds, `1 = 0`)
		} else {
			var ph []string
			for _, id := range f.IDs {
				ph = append(ph, "?")
				args = append(args, string(id))
			}
			conds = append(conds, `p.id IN (`+strings.Join(ph, ", ")+`)`)
		}
	}
	if len(conds) == 0 {
		return "", args
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args
}

// CountPackages counts the packages f matches and adds up their sizes.
func (s *Store) CountPackages(ctx context.Context, f catalog.PackageFilter) (catalog.PackageTotals, error) {
	where, args := packageWhere(s.d, f)
	var t catalog.PackageTotals
	if err := s.c().queryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(p.size), 0) FROM packages p`+where, args...).Scan(&t.Count, &t.Bytes); err != nil {
		return t, fmt.Errorf("count packages: %w", err)
	}
	return t, nil
}

// DeletePackage removes the package; its files, assignment and reported
// states go with it (ON DELETE CASCADE).
func (s *Store) DeletePackage(ctx context.Context, id wharf.PackageID) error {
	res, err := s.c().exec(ctx, `DELETE FROM packages WHERE id = ?`, string(id))
	if err != nil {
		return fmt.Errorf("delete package %s: %w", id, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("delete package %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete package %s: %w", id, wharf.ErrNotFound)
	}
	return nil
}

// BlobInUse reports whether a package assigned to server lists a file with
// digest d (any package, when server is empty).
func (s *Store) BlobInUse(ctx context.Context, d wharf.Digest, server wharf.ServerName) (bool, error) {
	query := `SELECT EXISTS (SELECT 1 FROM package_files f WHERE f.sha256 = ?)`
	args := []any{string(d)}
	if server != "" {
		query = `SELECT EXISTS (SELECT 1 FROM package_files f JOIN packages p ON p.id = f.package_id
			WHERE f.sha256 = ? AND (p.assign_all OR EXISTS (SELECT 1 FROM package_servers a WHERE a.package_id = p.id AND a.server_name = ?)))`
		args = append(args, string(server))
	}
	var used bool
	if err := s.c().queryRow(ctx, query, args...).Scan(&used); err != nil {
		return false, fmt.Errorf("check use of blob %s: %w", d, err)
	}
	return used, nil
}

// scanPackage reads the packageColumns of one row.
func scanPackage(row interface{ Scan(...any) error }) (catalog.Package, error) {
	var p catalog.Package
	err := row.Scan(&p.ID, &p.Name, &p.Version, &p.Size, &p.FileCount, &p.AssignAll, &p.CustomLocation, &p.Signed,
		timeCol{&p.CreatedAt})
	return p, err
}

// insertBatch is how many rows one multi-row INSERT carries: well under
// both databases' limits on bound parameters.
const insertBatch = 200

// insertRows runs prefix + "(?, ...), (?, ...)" + suffix for rows in
// batches. Every row has the same number of values.
func (c conn) insertRows(ctx context.Context, prefix, suffix string, rows [][]any) error {
	for len(rows) > 0 {
		batch := rows[:min(len(rows), insertBatch)]
		rows = rows[len(batch):]
		tuple := "(" + placeholders(len(batch[0])) + ")"
		var b strings.Builder
		b.WriteString(prefix)
		args := make([]any, 0, len(batch)*len(batch[0]))
		for i, r := range batch {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
			args = append(args, r...)
		}
		b.WriteString(suffix)
		if _, err := c.exec(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}
