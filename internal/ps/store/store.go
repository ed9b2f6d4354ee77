// Package store is the Package Server's state DB: a small SQLite database
// under the install dir (<install dir>/state/ps.db) that indexes every
// package the PS has or is getting, where its folder physically is, its
// state, and every file's size, SHA-256 and modification time, so serving
// can answer ETag and Last-Modified without touching the bytes.
//
// # Store roots
//
// Every package records the store root holding it and its folder there,
// so serving and removal find it wherever it was placed: the primary
// location, a rotated root, or its custom location. The layout of a root
// (its marker, temporary and trash folders) belongs to package storeroot.
// An unmounted volume looks empty, and empty must never be read as
// "deleted": when a root that holds packages lacks its marker, its
// packages are unavailable (kept in the index, reported, not served, not
// downloaded again) until it reappears. Root availability is a runtime
// fact, re-checked by the caller (SetRootAvailable); the index keeps each
// package's last known state.
//
// The Store keeps the whole index in memory as well, so lookups (one per
// served request) do not touch the database. All methods are safe for
// concurrent use.
package store

import (
	"context"
	"database/sql"
	"embed"

	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Package is one package as the index knows it.
type Package struct {
	ID             string
	Name           string
	Version        string
	Signed         bool
	CustomLocation string
	Root           string // the store root holding it
	Path           string // its folder: Root/ID
	// Link is the link at another store root that points to Path, when
	// the package is behind one (a relocation could not move it).
	Link      string
	State     string // api.StateDownloading, api.StateReady or api.StateFailed
	Reason    string // why it failed
	Size      int64
	FileCount int
	UpdatedAt time.Time
	// Unavailable is set (to the reason) in answers when the package's
	// root is unavailable; it is not stored.
	Unavailable string
	Files       []File // sorted by path; filled by Get only
}

// Reported returns the state and reason the PS reports for p: unavailable
// while its root is, else its stored state.
func (p Package) Reported() (state, reason string) {
	if p.Unavailable != "" {
		return api.StateUnavailable, p.Unavailable
	}
	return p.State, p.Reason
}

// File is one file of a package: its manifest entry and, once the package
// is ready, when it was written here (Last-Modified).
type File struct {
	wharf.File
	ModTime time.Time // zero until the package is ready
}

// Store is the state DB.
type Store struct {
	db    *sql.DB
	group *commitGroup // relocation writes, committed together

	mu          sync.RWMutex
	pkgs        map[string]*entry
	unavailable map[string]string // root → reason
	// moving holds the open journal entry of every package whose folder
	// a relocation is moving (by package id), so serving also finds it
	// where the move puts it (relocate.Entry.ServingFolders).
	moving map[string]relocate.Entry
	// movingRoots holds the open entries of whole roots being moved (by
	// key; a store root moves whole at most once at a time): a package of
	// such a root is also found in the new root.
	movingRoots map[string]relocate.Entry
	// roots counts, by store root, what the index holds there, kept up to
	// date by every change, so the roots in use and a summary of the store
	// cost O(roots), not O(packages).
	roots map[string]*rootCount
	// linkRoots counts, by store root, the links of packages there.
	linkRoots map[string]int
}

// rootCount is what the index holds in one store root.
type rootCount struct {
	packages, linked, custom int
	bytes                    int64
	states                   map[string]int // by stored state
}

// countLocked adds (sign 1) or removes (sign -1) p from the counts. Called
// with s.mu held for writing.
func (s *Store) countLocked(p *Package, sign int) {
	rc := s.roots[p.Root]
	if rc == nil {
		rc = &rootCount{states: map[string]int{}}
		s.roots[p.Root] = rc
	}
	rc.packages += sign
	rc.bytes += int64(sign) * p.Size
	rc.states[p.State] += sign
	if p.CustomLocation != "" {
		rc.custom += sign
	}
	if p.Link != "" {
		rc.linked += sign
		lr := filepath.Dir(p.Link)
		if s.linkRoots[lr] += sign; s.linkRoots[lr] == 0 {
			delete(s.linkRoots, lr)
		}
	}
	if rc.packages == 0 {
		delete(s.roots, p.Root)
	}
}

// change applies fn to the package of e, keeping the counts right. Called
// with s.mu held for writing.
func (s *Store) changeLocked(e *entry, fn func(p *Package)) {
	s.countLocked(&e.pkg, -1)
	fn(&e.pkg)
	s.countLocked(&e.pkg, 1)
}

type entry struct {
	pkg   Package // Files nil
	files map[string]File
}

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating when missing) the state DB at path and loads the
// index.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open state db: %w", err)
	}
	if strings.ContainsRune(path, '?') {
		// The driver reads everything after '?' as connection parameters.
		return nil, fmt.Errorf("open state db %s: path must not contain '?'", path)
	}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "1")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	s := &Store{db: db, group: &commitGroup{db: db}, pkgs: map[string]*entry{}, unavailable: map[string]string{},
		moving: map[string]relocate.Entry{}, movingRoots: map[string]relocate.Entry{}, roots: map[string]*rootCount{},
		linkRoots: map[string]int{}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	if err := s.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	open, err := s.RelocationJournal().List(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	for _, e := range open {
		s.noteJournal(e)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// migrate applies the embedded migrations newer than PRAGMA user_version,
// each in one transaction with the version bump.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var have int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(names) {
		return fmt.Errorf("schema version %d is newer than this wharf (%d): downgrade refused", have, len(names))
	}
	for i := have; i < len(names); i++ {
		body, err := migrations.ReadFile(names[i])
		if err != nil {
			return err
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
	}
	return nil
}

func (s *Store) load(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, version, signed, custom_location, root, path, link,
		state, reason, size, file_count, updated_at FROM packages`)
	if err != nil {
		return fmt.Errorf("load packages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Package
		var updated int64
		if err := rows.Scan(&p.ID, &p.Name, &p.Version, &p.Signed, &p.CustomLocation, &p.Root, &p.Path, &p.Link,
			&p.State, &p.Reason, &p.Size, &p.FileCount, &updated); err != nil {
			return fmt.Errorf("load packages: %w", err)
		}
		p.UpdatedAt = time.Unix(0, updated)
		s.pkgs[p.ID] = &entry{pkg: p, files: map[string]File{}}
		s.countLocked(&p, 1)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load packages: %w", err)
	}
	frows, err := s.db.QueryContext(ctx, `SELECT package_id, path, size, sha256, mtime FROM files`)
	if err != nil {
		return fmt.Errorf("load files: %w", err)
	}
	defer frows.Close()
	for frows.Next() {
		var id string
		var f File
		var mtime int64
		if err := frows.Scan(&id, &f.Path, &f.Size, &f.SHA256, &mtime); err != nil {
			return fmt.Errorf("load files: %w", err)
		}
		if mtime != 0 {
			f.ModTime = time.Unix(0, mtime)
		}
		if e := s.pkgs[id]; e != nil {
			e.files[f.Path] = f
		}
	}
	return frows.Err()
}

func (s *Store) copyOut(e *entry, withFiles bool) Package {
	p := e.pkg
	p.Unavailable = s.unavailable[p.Root]
	if withFiles {
		p.Files = make([]File, 0, len(e.files))
		for _, f := range e.files {
			p.Files = append(p.Files, f)
		}
		slices.SortFunc(p.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	}
	return p
}

// Get returns the package with its files.
func (s *Store) Get(id string) (Package, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.pkgs[id]
	if !ok {
		return Package{}, false
	}
	return s.copyOut(e, true), true
}

// List returns every package without its files, sorted by name, version and
// id. It copies and sorts the whole index: for tests and one-off listings,
// never on a path that runs per package (see Page, State and Summary).
func (s *Store) List() []Package {
	s.mu.RLock()
	out := make([]Package, 0, len(s.pkgs))
	for _, e := range s.pkgs {
		out = append(out, s.copyOut(e, false))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Version, b.Version); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Roots returns the store roots that hold at least one package, sorted.
func (s *Store) Roots() []string {
	s.mu.RLock()
	out := make([]string, 0, len(s.roots))
	for r := range s.roots {
		out = append(out, r)
	}
	s.mu.RUnlock()
	sort.Strings(out)
	return out
}

// UsesRoot reports whether the index records anything in root: a
// package's folder, or the link of a package behind one. A root it does not
// use holds nothing of this Package Server's (see storeroot.Roots.Retire).
func (s *Store) UsesRoot(root string) bool {
	root = filepath.Clean(root)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.roots[root] != nil || s.linkRoots[root] > 0
}

// HasPackagesIn reports whether any package of the index is in root.
func (s *Store) HasPackagesIn(root string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.roots[root] != nil
}

// RootSummary is what the index holds in one store root.
type RootSummary struct {
	Root        string
	Packages    int
	Bytes       int64
	Linked      int // packages there behind a link at another root
	Custom      bool
	Unavailable string // why the root is unavailable, "" when it is not
	// States counts its packages by stored state.
	States map[string]int
}

// Summary is the index in numbers: by reported state (a package on an
// unavailable root counts as api.StateUnavailable) and by root, sorted. It
// costs O(roots).
type Summary struct {
	Packages int
	States   map[string]int
	Roots    []RootSummary
}

// Summary returns the index in numbers.
func (s *Store) Summary() Summary {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sum := Summary{States: map[string]int{}}
	for root, rc := range s.roots {
		rs := RootSummary{Root: root, Packages: rc.packages, Bytes: rc.bytes, Linked: rc.linked, Custom: rc.custom > 0,
			Unavailable: s.unavailable[root], States: map[string]int{}}
		for st, n := range rc.states {
			if n == 0 {
				continue
			}
			rs.States[st] = n
			if rs.Unavailable != "" {
				st = api.StateUnavailable
			}
			sum.States[st] += n
		}
		sum.Packages += rc.packages
		sum.Roots = append(sum.Roots, rs)
	}
	slices.SortFunc(sum.Roots, func(a, b RootSummary) int { return strings.Compare(a.Root, b.Root) })
	return sum
}

// State returns the stored state of package id and the reason its root is
// unavailable ("" when it is available) without copying anything; ok is
// false when the index does not have it.
func (s *Store) State(id string) (state, unavailable string, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.pkgs[id]
	if !ok {
		return "", "", false
	}
	return e.pkg.State, s.unavailable[e.pkg.Root], true
}

// IsCustom reports whether package id keeps a custom location (which a
// relocation never moves), from memory.
func (s *Store) IsCustom(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.pkgs[id]
	return ok && e.pkg.CustomLocation != ""
}

// RootOf returns the store root of package id.
func (s *Store) RootOf(id string) (root string, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.pkgs[id]
	if !ok {
		return "", false
	}
	return e.pkg.Root, true
}

// Page returns up to limit packages without their files in name, version
// and id order, after the package named by after ("" for the first page),
// from the database's index on those columns: O(limit), whatever the size
// of the store. next is the id to pass for the next page, "" after the last.
func (s *Store) Page(ctx context.Context, after string, limit int) (page []Package, next string, err error) {
	if limit <= 0 {
		return nil, "", nil
	}
	var rows *sql.Rows
	if after == "" {
		rows, err = s.db.QueryContext(ctx, `SELECT id FROM packages ORDER BY name, version, id LIMIT ?`, limit+1)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT p.id FROM packages p, packages a WHERE a.id = ?
			AND (p.name, p.version, p.id) > (a.name, a.version, a.id) ORDER BY p.name, p.version, p.id LIMIT ?`, after, limit+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list packages: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("list packages: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list packages: %w", err)
	}
	if len(ids) > limit {
		ids, next = ids[:limit], ids[limit-1]
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range ids {
		if e, ok := s.pkgs[id]; ok {
			page = append(page, s.copyOut(e, false))
		}
	}
	return page, next, nil
}

// Put inserts p with its files, or replaces the package of the same id and
// all its files. File modification times are kept as given (zero until the
// package is ready).
func (s *Store) Put(ctx context.Context, p Package) error {
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store package %s: %w", p.ID, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM packages WHERE id = ?`, p.ID); err != nil {
		return fmt.Errorf("store package %s: %w", p.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO packages (id, name, version, signed, custom_location, root, path, link,
		state, reason, size, file_count, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Name, p.Version, p.Signed, p.CustomLocation, p.Root, p.Path, p.Link, p.State, p.Reason,
		p.Size, p.FileCount, p.UpdatedAt.UnixNano()); err != nil {
		return fmt.Errorf("store package %s: %w", p.ID, err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO files (package_id, path, size, sha256, mtime) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("store package %s: %w", p.ID, err)
	}
	defer stmt.Close()
	files := make(map[string]File, len(p.Files))
	for _, f := range p.Files {
		if _, err := stmt.ExecContext(ctx, p.ID, f.Path, f.Size, f.SHA256, unixNano(f.ModTime)); err != nil {
			return fmt.Errorf("store package %s file %s: %w", p.ID, f.Path, err)
		}
		files[f.Path] = f
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store package %s: %w", p.ID, err)
	}
	p.Files, p.Unavailable = nil, ""
	if old, ok := s.pkgs[p.ID]; ok {
		s.countLocked(&old.pkg, -1)
	}
	s.pkgs[p.ID] = &entry{pkg: p, files: files}
	s.countLocked(&p, 1)
	return nil
}

// SetState records a package's state and reason.
func (s *Store) SetState(ctx context.Context, id, state, reason string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pkgs[id]
	if !ok {
		return fmt.Errorf("set state of package %s: %w", id, wharf.ErrNotFound)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE packages SET state = ?, reason = ?, updated_at = ? WHERE id = ?`,
		state, reason, now.UnixNano(), id); err != nil {
		return fmt.Errorf("set state of package %s: %w", id, err)
	}
	s.changeLocked(e, func(p *Package) { p.State, p.Reason, p.UpdatedAt = state, reason, now })
	return nil
}

// MarkReady records that the package is whole in its folder, with the
// modification time of each file, in one transaction.
func (s *Store) MarkReady(ctx context.Context, id string, mtimes map[string]time.Time, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pkgs[id]
	if !ok {
		return fmt.Errorf("mark package %s ready: %w", id, wharf.ErrNotFound)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mark package %s ready: %w", id, err)
	}
	defer tx.Rollback()
	for p, t := range mtimes {
		if _, ok := e.files[p]; !ok {
			return fmt.Errorf("mark package %s ready: file %s: %w", id, p, wharf.ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE files SET mtime = ? WHERE package_id = ? AND path = ?`,
			unixNano(t), id, p); err != nil {
			return fmt.Errorf("mark package %s ready: %w", id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE packages SET state = ?, reason = '', updated_at = ? WHERE id = ?`,
		api.StateReady, now.UnixNano(), id); err != nil {
		return fmt.Errorf("mark package %s ready: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mark package %s ready: %w", id, err)
	}
	for p, t := range mtimes {
		f := e.files[p]
		f.ModTime = t
		e.files[p] = f
	}
	s.changeLocked(e, func(p *Package) { p.State, p.Reason, p.UpdatedAt = api.StateReady, "", now })
	return nil
}

// Delete forgets a package and its files; a missing package is not an
// error.
func (s *Store) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM packages WHERE id = ?`, id); err != nil {
		return fmt.Errorf("forget package %s: %w", id, err)
	}
	if e, ok := s.pkgs[id]; ok {
		s.countLocked(&e.pkg, -1)
	}
	delete(s.pkgs, id)
	return nil
}

// SetRootAvailable records whether root can be used now; reason says why
// not. It reports whether that changed.
func (s *Store) SetRootAvailable(root string, available bool, reason string) (changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, wasUnavailable := s.unavailable[root]
	if available {
		delete(s.unavailable, root)
		return wasUnavailable
	}
	s.unavailable[root] = reason
	return !wasUnavailable || old != reason
}

// RootUnavailable returns why root cannot be used now, or "" when it can.
func (s *Store) RootUnavailable(root string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.unavailable[root]
}

// Resolved is what serving needs to answer a request for one file.
type Resolved struct {
	Dir string // the package folder the index names
	// Also lists, while a relocation moves the package, the other folders
	// where it may be whole, in the order the move passes through them
	// (relocate.Entry.ServingFolders): serving tries them in that order
	// when Dir is missing.
	Also   []string
	Signed bool
	File   File
}

// Resolve finds file rel of package id for serving. It fails with an error
// wrapping wharf.ErrNotFound when the package is unknown, not ready, on an
// unavailable root, or has no file rel. It does not validate rel: a path
// that is not in the manifest is simply not found.
func (s *Store) Resolve(id, rel string) (Resolved, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.pkgs[id]
	switch {
	case !ok:
		return Resolved{}, wharf.Errorf(wharf.ErrNotFound, "package %s is not on this server", id)
	case e.pkg.State != api.StateReady:
		return Resolved{}, wharf.Errorf(wharf.ErrNotFound, "package %s is not ready on this server (%s)", id, e.pkg.State)
	case s.unavailable[e.pkg.Root] != "":
		return Resolved{}, wharf.Errorf(wharf.ErrNotFound, "package %s is unavailable on this server", id)
	}
	f, ok := e.files[rel]
	if !ok {
		return Resolved{}, wharf.Errorf(wharf.ErrNotFound, "package %s has no file %q", id, rel)
	}
	return Resolved{Dir: e.pkg.Path, Also: s.alsoLocked(id, e.pkg.Path), Signed: e.pkg.Signed, File: f}, nil
}

// alsoLocked returns the folders besides dir where package id may be whole
// while it moves. Called with s.mu held.
func (s *Store) alsoLocked(id, dir string) []string {
	var folders []string
	if m, ok := s.moving[id]; ok {
		folders = m.ServingFolders()
	}
	for _, r := range s.movingRoots {
		folders = append(folders, r.RootServingFolders(dir)...)
	}
	var out []string
	for _, d := range folders {
		if d != "" && d != dir && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// ResolvePackage is Resolve for the package alone: it tells serving whether
// the package exists, is ready and is signed, before any path is looked at.
func (s *Store) ResolvePackage(id string) (signed bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.pkgs[id]
	switch {
	case !ok:
		return false, wharf.Errorf(wharf.ErrNotFound, "package %s is not on this server", id)
	case e.pkg.State != api.StateReady:
		return false, wharf.Errorf(wharf.ErrNotFound, "package %s is not ready on this server (%s)", id, e.pkg.State)
	case s.unavailable[e.pkg.Root] != "":
		return false, wharf.Errorf(wharf.ErrNotFound, "package %s is unavailable on this server", id)
	}
	return e.pkg.Signed, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
