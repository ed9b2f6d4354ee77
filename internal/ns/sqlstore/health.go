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

// PutHealth stores the server's latest health.
func (s *Store) PutHealth(ctx context.Context, server wharf.ServerName, at time.Time, data string) error {
	if _, err := s.c().exec(ctx, `INSERT INTO server_health (server, received_at, data) VALUES (?, ?, ?)
		ON CONFLICT (server) DO UPDATE SET received_at = excluded.received_at, data = excluded.data`,
		string(server), s.d.time(at), data); err != nil {
		return fmt.Errorf("store the health of %s: %w", server, err)
	}
	return nil
}

// Health returns the server's latest health, or ErrNotFound.
func (s *Store) Health(ctx context.Context, server wharf.ServerName) (catalog.HealthRecord, error) {
	h := catalog.HealthRecord{Server: server}
	err := s.c().queryRow(ctx, `SELECT received_at, data FROM server_health WHERE server = ?`, string(server)).
		Scan(timeCol{&h.ReceivedAt}, &h.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("health of %s: %w", server, wharf.ErrNotFound)
	}
	if err != nil {
		return h, fmt.Errorf("health of %s: %w", server, err)
	}
	return h, nil
}

// ListHealth returns every server's latest health, ordered by server.
func (s *Store) ListHealth(ctx context.Context) ([]catalog.HealthRecord, error) {
	rows, err := s.c().query(ctx, `SELECT server, received_at, data FROM server_health ORDER BY server`)
	if err != nil {
		return nil, fmt.Errorf("list health: %w", err)
	}
	defer rows.Close()
	var out []catalog.HealthRecord
	for rows.Next() {
		var h catalog.HealthRecord
		if err := rows.Scan(&h.Server, timeCol{&h.ReceivedAt}, &h.Data); err != nil {
			return nil, fmt.Errorf("list health: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list health: %w", err)
	}
	return out, nil
}

// AddVolumeSamples stores samples and drops the server's older than
// before, in one transaction.
func (s *Store) AddVolumeSamples(ctx context.Context, server wharf.ServerName, samples []catalog.VolumeSample, before time.Time) error {
	return s.inTx(ctx, func(c conn) error {
		for _, v := range samples {
			if _, err := c.exec(ctx, `INSERT INTO volume_samples (server, volume, at, total_mb, free_mb, used_mb, reserve_mb)
				VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (server, volume, at) DO UPDATE SET total_mb = excluded.total_mb, free_mb = excluded.free_mb,
					used_mb = excluded.used_mb, reserve_mb = excluded.reserve_mb`,
				string(server), v.Volume, c.d.time(v.At), v.TotalMB, v.FreeMB, v.UsedMB, v.ReserveMB); err != nil {
				return fmt.Errorf("store volume samples of %s: %w", server, err)
			}
		}
		if _, err := c.exec(ctx, `DELETE FROM volume_samples WHERE server = ? AND at < ?`, string(server), c.d.time(before)); err != nil {
			return fmt.Errorf("drop old volume samples of %s: %w", server, err)
		}
		return nil
	})
}

// VolumeSamples returns the newest limit samples of a volume since since,
// oldest first.
func (s *Store) VolumeSamples(ctx context.Context, server wharf.ServerName, volume string, since time.Time, limit int) ([]catalog.VolumeSample, error) {
	rows, err := s.c().query(ctx, `SELECT at, total_mb, free_mb, used_mb, reserve_mb FROM volume_samples
		WHERE server = ? AND volume = ? AND at >= ? ORDER BY at DESC LIMIT ?`, string(server), volume, s.d.time(since), limit)
	if err != nil {
		return nil, fmt.Errorf("volume samples of %s on %s: %w", server, volume, err)
	}
	defer rows.Close()
	var out []catalog.VolumeSample
	for rows.Next() {
		v := catalog.VolumeSample{Volume: volume}
		if err := rows.Scan(timeCol{&v.At}, &v.TotalMB, &v.FreeMB, &v.UsedMB, &v.ReserveMB); err != nil {
			return nil, fmt.Errorf("volume samples of %s on %s: %w", server, volume, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("volume samples of %s on %s: %w", server, volume, err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
