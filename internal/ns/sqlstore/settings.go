package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wharf-project/wharf/internal/wharf"
)

// Setting returns the value stored under key with InitSetting, or an error
// wrapping ErrNotFound.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var value string
	err := s.c().queryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("setting %s: %w", key, wharf.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return value, nil
}

// InitSetting stores value under key unless the key has a value already; it
// reports whether it stored it. Of several racing callers exactly one
// stores its value.
func (s *Store) InitSetting(ctx context.Context, key, value string) (bool, error) {
	res, err := s.c().exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, value)
	if err != nil {
		return false, fmt.Errorf("init setting %s: %w", key, err)
	}
	n, err := affected(res)
	if err != nil {
		return false, fmt.Errorf("init setting %s: %w", key, err)
	}
	return n == 1, nil
}
