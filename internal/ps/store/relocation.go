package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/wharf"
)

// The relocation engine's view of the state DB (package relocate): the
// index of packages with their folders and links, the journal of moves in
// flight, and the relocation controller's counters. Each is a thin type
// over the Store, because the engine's method names (List, Close) differ in
// meaning from the Store's own.

var (
	_ relocate.Index   = (*RelocationIndex)(nil)
	_ relocate.Journal = (*RelocationJournal)(nil)
)

// RelocationIndex is the state DB as the relocation engine's
// relocate.Index. Get it with Store.RelocationIndex.
type RelocationIndex struct{ s *Store }

// RelocationIndex returns the relocation engine's view of the index.
func (s *Store) RelocationIndex() *RelocationIndex { return &RelocationIndex{s} }

// Packages implements relocate.Index: ready packages with an ID after
// after, in ID order, from the database. Packages on a store root that is
// unavailable now (its marker is missing: a volume not mounted) are left
// out; the engine must not take their absence for anything.
func (x *RelocationIndex) Packages(ctx context.Context, after wharf.PackageID, limit int) ([]relocate.Package, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []relocate.Package
	for len(out) == 0 {
		page, last, err := x.page(ctx, string(after), limit)
		if err != nil {
			return nil, err
		}
		if last == "" {
			return out, nil // the listing is over
		}
		x.s.mu.RLock()
		for _, p := range page {
			if x.s.unavailable[filepath.Dir(p.Folder)] == "" {
				out = append(out, p)
			}
		}
		x.s.mu.RUnlock()
		after = wharf.PackageID(last)
	}
	return out, nil
}

// page reads up to limit ready packages after after; last is the ID of the
// last one read, "" when there was none.
func (x *RelocationIndex) page(ctx context.Context, after string, limit int) (page []relocate.Package, last string, err error) {
	rows, err := x.s.db.QueryContext(ctx, `SELECT p.id, p.path, p.link, p.custom_location != '', p.size,
		COALESCE((SELECT f.path FROM files f WHERE f.package_id = p.id
			ORDER BY length(CAST(f.path AS BLOB)) DESC, f.path LIMIT 1), '')
		FROM packages p WHERE p.id > ? AND p.state = ? ORDER BY p.id LIMIT ?`, after, api.StateReady, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list packages after %q: %w", after, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p relocate.Package
		var id string
		if err := rows.Scan(&id, &p.Folder, &p.Link, &p.Custom, &p.Size, &p.LongestPath); err != nil {
			return nil, "", fmt.Errorf("list packages after %q: %w", after, err)
		}
		p.ID, last = wharf.PackageID(id), id
		page = append(page, p)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list packages after %q: %w", after, err)
	}
	return page, last, nil
}

// Files implements relocate.Index.
func (x *RelocationIndex) Files(ctx context.Context, id wharf.PackageID, after string, limit int) ([]wharf.File, error) {
	rows, err := x.s.db.QueryContext(ctx, `SELECT path, size, sha256 FROM files
		WHERE package_id = ? AND path > ? ORDER BY path LIMIT ?`, string(id), after, limit)
	if err != nil {
		return nil, fmt.Errorf("list files of package %s: %w", id, err)
	}
	defer rows.Close()
	var out []wharf.File
	for rows.Next() {
		var f wharf.File
		var sum string
		if err := rows.Scan(&f.Path, &f.Size, &sum); err != nil {
			return nil, fmt.Errorf("list files of package %s: %w", id, err)
		}
		f.SHA256 = wharf.Digest(sum)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list files of package %s: %w", id, err)
	}
	if len(out) == 0 {
		var n int
		if err := x.s.db.QueryRowContext(ctx, `SELECT count(*) FROM packages WHERE id = ?`, string(id)).Scan(&n); err != nil {
			return nil, fmt.Errorf("list files of package %s: %w", id, err)
		}
		if n == 0 {
			return nil, wharf.Errorf(wharf.ErrNotFound, "package %s is not in the index", id)
		}
	}
	return out, nil
}

// SetLocation implements relocate.Index: the switch. The new folder and
// link are committed to the database (in a group commit with the other
// packages moving at once) and then put in the in-memory copy that serving
// reads, so a request resolves to the old folder until the commit and to
// the new one shortly after it (serving retries a folder that just moved).
func (x *RelocationIndex) SetLocation(ctx context.Context, id wharf.PackageID, loc relocate.Location) error {
	s := x.s
	folder := filepath.Clean(loc.Folder)
	link := loc.Link
	if link != "" {
		link = filepath.Clean(link)
	}
	s.mu.RLock()
	_, ok := s.pkgs[string(id)]
	s.mu.RUnlock()
	if !ok {
		return wharf.Errorf(wharf.ErrNotFound, "set location of package %s: not in the index", id)
	}
	err := s.group.do(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE packages SET path = ?, root = ?, link = ? WHERE id = ?`,
			folder, filepath.Dir(folder), link, string(id))
		if err != nil {
			return fmt.Errorf("set location of package %s to %s: %w", id, folder, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return wharf.Errorf(wharf.ErrNotFound, "set location of package %s: not in the index", id)
		}
		return nil
	}, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if e, ok := s.pkgs[string(id)]; ok {
			s.changeLocked(e, func(p *Package) { p.Path, p.Root, p.Link = folder, filepath.Dir(folder), link })
		}
	})
	return err
}

// SetRoot implements relocate.Index: the switch of a whole root, one
// UPDATE in one transaction (paths are rewritten in SQL, where length and
// substr both count characters), then the in-memory copy serving reads.
func (x *RelocationIndex) SetRoot(ctx context.Context, from, to string) (int, error) {
	s := x.s
	from, to = filepath.Clean(from), filepath.Clean(to)
	var n int64
	err := s.group.do(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE packages SET path = ? || substr(path, length(root) + 1), root = ? WHERE root = ?`,
			to, to, from)
		if err != nil {
			return fmt.Errorf("switch the packages of root %s to %s: %w", from, to, err)
		}
		n, _ = res.RowsAffected()
		return nil
	}, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.roots[from] == nil {
			return // none there (a second call)
		}
		for _, e := range s.pkgs {
			if e.pkg.Root == from {
				s.changeLocked(e, func(p *Package) { p.Root, p.Path = to, filepath.Join(to, filepath.Base(p.Path)) })
			}
		}
	})
	return int(n), err
}

// Links returns the link of every package that is behind one (a package a
// relocation left in its old place), by package ID.
func (s *Store) Links(context.Context) (map[string]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]string{}
	for id, e := range s.pkgs {
		if e.pkg.Link != "" {
			out[id] = e.pkg.Link
		}
	}
	return out, nil
}

// LinkedPackages returns, without their files, the packages behind a link
// (left at their place by a relocation), by id: one pass over the index in
// memory, copying only those (the link audit's input).
func (s *Store) LinkedPackages() []Package {
	s.mu.RLock()
	var out []Package
	for _, e := range s.pkgs {
		if e.pkg.Link != "" {
			out = append(out, s.copyOut(e, false))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Package) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// RelocationJournal is the state DB as the relocation engine's
// relocate.Journal: table relocation_journal, one row per open entry, each
// call one committed transaction. Get it with Store.RelocationJournal.
type RelocationJournal struct{ s *Store }

// RelocationJournal returns the relocation journal.
func (s *Store) RelocationJournal() *RelocationJournal { return &RelocationJournal{s} }

// Begin implements relocate.Journal.
func (j *RelocationJournal) Begin(ctx context.Context, e relocate.Entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal %s: %w", e.Key, err)
	}
	return j.tx(ctx, "begin journal entry "+e.Key, func() { j.s.noteJournal(e) }, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM relocation_journal WHERE key = ?`, e.Key).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return wharf.Errorf(wharf.ErrExists, "journal entry %s is open", e.Key)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO relocation_journal (key, data) VALUES (?, ?)`, e.Key, string(data))
		return err
	})
}

// Advance implements relocate.Journal.
func (j *RelocationJournal) Advance(ctx context.Context, key string, step relocate.Step) error {
	return j.tx(ctx, "advance journal entry "+key, func() { j.s.noteStep(key, step) }, func(tx *sql.Tx) error {
		var data string
		err := tx.QueryRowContext(ctx, `SELECT data FROM relocation_journal WHERE key = ?`, key).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			return wharf.Errorf(wharf.ErrNotFound, "no open journal entry %s", key)
		}
		if err != nil {
			return err
		}
		var e relocate.Entry
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("journal entry %s is corrupt: %w", key, err)
		}
		e.Step = step
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE relocation_journal SET data = ? WHERE key = ?`, string(b), key)
		return err
	})
}

// Close implements relocate.Journal.
func (j *RelocationJournal) Close(ctx context.Context, key string) error {
	return j.tx(ctx, "close journal entry "+key, func() { j.s.forgetJournal(key) }, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM relocation_journal WHERE key = ?`, key)
		return err
	})
}

// List implements relocate.Journal.
func (j *RelocationJournal) List(ctx context.Context) ([]relocate.Entry, error) {
	rows, err := j.s.db.QueryContext(ctx, `SELECT key, data FROM relocation_journal ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("list journal: %w", err)
	}
	defer rows.Close()
	var out []relocate.Entry
	for rows.Next() {
		var key, data string
		if err := rows.Scan(&key, &data); err != nil {
			return nil, fmt.Errorf("list journal: %w", err)
		}
		var e relocate.Entry
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, fmt.Errorf("journal entry %s is corrupt: %w", key, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// tx runs fn in the group commit of relocation writes, and after once it
// committed.
func (j *RelocationJournal) tx(ctx context.Context, what string, after func(), fn func(*sql.Tx) error) error {
	err := j.s.group.do(ctx, fn, after)
	if err == nil || errors.Is(err, wharf.ErrExists) || errors.Is(err, wharf.ErrNotFound) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// noteJournal records open entry e in memory for serving: while a package's
// move is open, Resolve also names the folders the move passes through.
func (s *Store) noteJournal(e relocate.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Kind {
	case relocate.KindMove:
		s.moving[e.Key] = e
	case relocate.KindRoot:
		s.movingRoots[e.Key] = e
	}
}

// noteStep records that open entry key advanced to step.
func (s *Store) noteStep(key string, step relocate.Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.moving[key]; ok {
		e.Step = step
		s.moving[key] = e
	}
}

// forgetJournal drops closed entry key.
func (s *Store) forgetJournal(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.moving, key)
	delete(s.movingRoots, key)
}

// RelocationState is what the relocation controller keeps across restarts
// (table relocation_state): the storage path in effect, the target and the
// counters of SPEC §6.2, and the last Package Location Status event.
type RelocationState struct {
	// StoragePath is the primary location in effect: where the store is
	// (after a success or a warning, the target of that attempt).
	StoragePath string
	// From is the storage path before Target was first attempted.
	From string
	// Target is where the store is moving, or last moved, to: the target of
	// the last attempt that got past its prerequisites.
	Target string
	// LastTried is the target of the last attempt, refused ones included.
	LastTried string
	// Running is set while an attempt is under way, so a restart resumes
	// it; RunRetry and RunManual say what kind of attempt it was.
	Running, RunRetry, RunManual bool
	// Mode is the relocation mode (online, exclusive) of the last
	// configuration, so an attempt resumed at start keeps it.
	Mode string
	// AttemptsDone counts the automatic retries toward Target.
	AttemptsDone int
	// LastStatus is the status bits of the last attempt (SPEC §6.3),
	// LastAttempt when it started and LastMessage its outcome in words.
	LastStatus  wharf.RelocationStatus
	LastAttempt time.Time
	LastMessage string
	// NextRetry is when the next automatic retry is due; zero for none.
	NextRetry time.Time
	// LastEvent is the last Package Location Status event that ended an
	// attempt; EventSent reports that the NS acknowledged it.
	LastEvent *api.LocationStatus
	EventSent bool
}

// LoadRelocationState returns the relocation controller's state; ok is
// false when none was saved yet.
func (s *Store) LoadRelocationState(ctx context.Context) (st RelocationState, ok bool, err error) {
	var lastAttempt, nextRetry int64
	var status uint32
	var event string
	err = s.db.QueryRowContext(ctx, `SELECT storage_path, from_path, target, last_tried, running, run_retry, run_manual,
		mode, attempts_done, last_status, last_attempt, last_message, next_retry, last_event, event_sent
		FROM relocation_state WHERE id = 1`).Scan(&st.StoragePath, &st.From, &st.Target, &st.LastTried,
		&st.Running, &st.RunRetry, &st.RunManual, &st.Mode, &st.AttemptsDone, &status, &lastAttempt, &st.LastMessage,
		&nextRetry, &event, &st.EventSent)
	if errors.Is(err, sql.ErrNoRows) {
		return RelocationState{}, false, nil
	}
	if err != nil {
		return RelocationState{}, false, fmt.Errorf("load relocation state: %w", err)
	}
	st.LastStatus = wharf.RelocationStatus(status)
	if lastAttempt != 0 {
		st.LastAttempt = time.Unix(0, lastAttempt).UTC()
	}
	if nextRetry != 0 {
		st.NextRetry = time.Unix(0, nextRetry).UTC()
	}
	if event != "" {
		var ev api.LocationStatus
		if err := json.Unmarshal([]byte(event), &ev); err != nil {
			return st, true, fmt.Errorf("load relocation state: last event is corrupt: %w", err)
		}
		st.LastEvent = &ev
	}
	return st, true, nil
}

// SaveRelocationState stores the relocation controller's state, durably.
func (s *Store) SaveRelocationState(ctx context.Context, st RelocationState) error {
	event := ""
	if st.LastEvent != nil {
		b, err := json.Marshal(st.LastEvent)
		if err != nil {
			return fmt.Errorf("save relocation state: %w", err)
		}
		event = string(b)
	}
	mode := st.Mode
	if mode == "" {
		mode = api.RelocationOnline
	}
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO relocation_state (id, storage_path, from_path, target,
		last_tried, running, run_retry, run_manual, mode, attempts_done, last_status, last_attempt, last_message,
		next_retry, last_event, event_sent) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		st.StoragePath, st.From, st.Target, st.LastTried, st.Running, st.RunRetry, st.RunManual, mode, st.AttemptsDone,
		uint32(st.LastStatus), unixNano(st.LastAttempt), st.LastMessage, unixNano(st.NextRetry), event, st.EventSent)
	if err != nil {
		return fmt.Errorf("save relocation state: %w", err)
	}
	return nil
}
