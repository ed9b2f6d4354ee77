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

// PutLocationEvent stores the event as the server's latest and, with
// history, appends it to the history, in one transaction.
func (s *Store) PutLocationEvent(ctx context.Context, server wharf.ServerName, at time.Time, data string, history bool) error {
	return s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO location_latest (server, received_at, data) VALUES (?, ?, ?)
			ON CONFLICT (server) DO UPDATE SET received_at = excluded.received_at, data = excluded.data`,
			string(server), c.d.time(at), data); err != nil {
			return fmt.Errorf("store location event of %s: %w", server, err)
		}
		if !history {
			return nil
		}
		if _, err := c.exec(ctx, `INSERT INTO location_history (id, server, received_at, data) VALUES (?, ?, ?, ?)`,
			string(wharf.NewPackageID()), string(server), c.d.time(at), data); err != nil {
			return fmt.Errorf("store location event of %s: %w", server, err)
		}
		return nil
	})
}

// LatestLocationEvent returns the server's latest event or ErrNotFound.
func (s *Store) LatestLocationEvent(ctx context.Context, server wharf.ServerName) (catalog.LocationEvent, error) {
	e := catalog.LocationEvent{Server: server}
	err := s.c().queryRow(ctx, `SELECT received_at, data FROM location_latest WHERE server = ?`, string(server)).
		Scan(timeCol{&e.ReceivedAt}, &e.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("location status of %s: %w", server, wharf.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("location status of %s: %w", server, err)
	}
	return e, nil
}

// LocationHistory returns up to limit events, newest first.
func (s *Store) LocationHistory(ctx context.Context, server wharf.ServerName, limit int) ([]catalog.LocationEvent, error) {
	rows, err := s.c().query(ctx, `SELECT received_at, data FROM location_history WHERE server = ?
		ORDER BY received_at DESC, id DESC LIMIT ?`, string(server), limit)
	if err != nil {
		return nil, fmt.Errorf("location history of %s: %w", server, err)
	}
	defer rows.Close()
	var out []catalog.LocationEvent
	for rows.Next() {
		e := catalog.LocationEvent{Server: server}
		if err := rows.Scan(timeCol{&e.ReceivedAt}, &e.Data); err != nil {
			return nil, fmt.Errorf("location history of %s: %w", server, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("location history of %s: %w", server, err)
	}
	return out, nil
}

// RaiseAlert stores a new alert, or counts a repeat of an unread alert
// with the same fingerprint (one statement, so replicas raising the same
// alert at once still make one).
func (s *Store) RaiseAlert(ctx context.Context, a catalog.Alert) (catalog.Alert, error) {
	if a.Fingerprint == "" {
		a.Fingerprint = a.ID
	}
	if a.LastSeenAt.IsZero() {
		a.LastSeenAt = a.CreatedAt
	}
	row := s.c().queryRow(ctx, `INSERT INTO alerts (id, server, level, message, created_at, read_at, fingerprint, count, last_seen_at)
		VALUES (?, ?, ?, ?, ?, NULL, ?, 1, ?)
		ON CONFLICT (fingerprint) WHERE read_at IS NULL
		DO UPDATE SET count = alerts.count + 1, last_seen_at = excluded.last_seen_at
		RETURNING `+alertColumns,
		a.ID, string(a.Server), a.Level, a.Message, s.d.time(a.CreatedAt), a.Fingerprint, s.d.time(a.LastSeenAt))
	out, err := scanAlert(row)
	if err != nil {
		if isUniqueViolation(err) {
			return a, fmt.Errorf("alert %s: %w", a.ID, wharf.ErrExists)
		}
		return a, fmt.Errorf("raise alert: %w", err)
	}
	return out, nil
}

const alertColumns = `id, server, level, message, created_at, read_at, fingerprint, count, last_seen_at`

func scanAlert(row interface{ Scan(...any) error }) (catalog.Alert, error) {
	var a catalog.Alert
	err := row.Scan(&a.ID, &a.Server, &a.Level, &a.Message, timeCol{&a.CreatedAt}, timeCol{&a.ReadAt},
		&a.Fingerprint, &a.Count, timeCol{&a.LastSeenAt})
	return a, err
}

// ListAlerts returns up to limit alerts, the last seen first.
func (s *Store) ListAlerts(ctx context.Context, unreadOnly bool, limit int) ([]catalog.Alert, error) {
	q := `SELECT ` + alertColumns + ` FROM alerts`
	if unreadOnly {
		q += ` WHERE read_at IS NULL`
	}
	rows, err := s.c().query(ctx, q+` ORDER BY last_seen_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	var out []catalog.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// CountUnreadAlerts counts the unread alerts by level.
func (s *Store) CountUnreadAlerts(ctx context.Context) (map[string]int, error) {
	rows, err := s.c().query(ctx, `SELECT level, COUNT(*) FROM alerts WHERE read_at IS NULL GROUP BY level`)
	if err != nil {
		return nil, fmt.Errorf("count alerts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var level string
		var n int
		if err := rows.Scan(&level, &n); err != nil {
			return nil, fmt.Errorf("count alerts: %w", err)
		}
		out[level] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count alerts: %w", err)
	}
	return out, nil
}

// MarkAlertRead marks an alert read; the first time stays.
func (s *Store) MarkAlertRead(ctx context.Context, id string, at time.Time) error {
	res, err := s.c().exec(ctx, `UPDATE alerts SET read_at = COALESCE(read_at, ?) WHERE id = ?`, s.d.time(at), id)
	if err != nil {
		return fmt.Errorf("mark alert %s read: %w", id, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("mark alert %s read: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("alert %s: %w", id, wharf.ErrNotFound)
	}
	return nil
}

// MarkAllAlertsRead marks every unread alert read and returns how many.
func (s *Store) MarkAllAlertsRead(ctx context.Context, at time.Time) (int, error) {
	res, err := s.c().exec(ctx, `UPDATE alerts SET read_at = ? WHERE read_at IS NULL`, s.d.time(at))
	if err != nil {
		return 0, fmt.Errorf("mark every alert read: %w", err)
	}
	n, err := affected(res)
	if err != nil {
		return 0, fmt.Errorf("mark every alert read: %w", err)
	}
	return int(n), nil
}

const taskColumns = `id, server, type, args, created_at, done_at, result`

func scanTask(row interface{ Scan(...any) error }) (catalog.Task, error) {
	var t catalog.Task
	err := row.Scan(&t.ID, &t.Server, &t.Type, &t.Args, timeCol{&t.CreatedAt}, timeCol{&t.DoneAt}, &t.Result)
	return t, err
}

// CreateTask stores a new server task.
func (s *Store) CreateTask(ctx context.Context, t catalog.Task) error {
	if _, err := s.c().exec(ctx, `INSERT INTO server_tasks (`+taskColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, string(t.Server), t.Type, t.Args, s.d.time(t.CreatedAt), s.d.nullTime(t.DoneAt), t.Result); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("task %s: %w", t.ID, wharf.ErrExists)
		}
		return fmt.Errorf("create task for %s: %w", t.Server, err)
	}
	return nil
}

// PendingTasks returns the server's pending tasks, oldest first; every
// server's, ordered by server first, when server is "".
func (s *Store) PendingTasks(ctx context.Context, server wharf.ServerName) ([]catalog.Task, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if server == "" {
		rows, err = s.c().query(ctx, `SELECT `+taskColumns+` FROM server_tasks WHERE done_at IS NULL
			ORDER BY server, created_at, id`)
	} else {
		rows, err = s.c().query(ctx, `SELECT `+taskColumns+` FROM server_tasks WHERE server = ? AND done_at IS NULL
			ORDER BY created_at, id`, string(server))
	}
	if err != nil {
		return nil, fmt.Errorf("pending tasks of %s: %w", server, err)
	}
	defer rows.Close()
	var out []catalog.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("pending tasks of %s: %w", server, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending tasks of %s: %w", server, err)
	}
	return out, nil
}

// Task returns one task of the server.
func (s *Store) Task(ctx context.Context, server wharf.ServerName, id string) (catalog.Task, error) {
	t, err := scanTask(s.c().queryRow(ctx, `SELECT `+taskColumns+` FROM server_tasks WHERE server = ? AND id = ?`, string(server), id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("task %s of %s: %w", id, server, wharf.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("task %s of %s: %w", id, server, err)
	}
	return t, nil
}

// CompleteTask records the result of a pending task.
func (s *Store) CompleteTask(ctx context.Context, server wharf.ServerName, id, result string, at time.Time) error {
	res, err := s.c().exec(ctx, `UPDATE server_tasks SET done_at = ?, result = ? WHERE server = ? AND id = ? AND done_at IS NULL`,
		s.d.time(at), result, string(server), id)
	if err != nil {
		return fmt.Errorf("complete task %s of %s: %w", id, server, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("complete task %s of %s: %w", id, server, err)
	}
	if n == 0 {
		return fmt.Errorf("pending task %s of %s: %w", id, server, wharf.ErrNotFound)
	}
	return nil
}
