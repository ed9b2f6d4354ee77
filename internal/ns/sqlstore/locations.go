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

// CreateAlert stores a new alert.
func (s *Store) CreateAlert(ctx context.Context, a catalog.Alert) error {
	if _, err := s.c().exec(ctx, `INSERT INTO alerts (id, server, level, message, created_at, read_at) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, string(a.Server), a.Level, a.Message, s.d.time(a.CreatedAt), s.d.nullTime(a.ReadAt)); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("alert %s: %w", a.ID, wharf.ErrExists)
		}
		return fmt.Errorf("create alert: %w", err)
	}
	return nil
}

// ListAlerts returns up to limit alerts, newest first.
func (s *Store) ListAlerts(ctx context.Context, unreadOnly bool, limit int) ([]catalog.Alert, error) {
	q := `SELECT id, server, level, message, created_at, read_at FROM alerts`
	if unreadOnly {
		q += ` WHERE read_at IS NULL`
	}
	rows, err := s.c().query(ctx, q+` ORDER BY created_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	var out []catalog.Alert
	for rows.Next() {
		var a catalog.Alert
		if err := rows.Scan(&a.ID, &a.Server, &a.Level, &a.Message, timeCol{&a.CreatedAt}, timeCol{&a.ReadAt}); err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
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
