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

const userColumns = `name, password_hash, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (catalog.User, error) {
	var u catalog.User
	err := row.Scan(&u.Name, &u.PasswordHash, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	return u, err
}

// CreateUser stores a new console user; ErrExists when the name is taken.
func (s *Store) CreateUser(ctx context.Context, u catalog.User) error {
	_, err := s.c().exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?)`,
		u.Name, u.PasswordHash, s.d.time(u.CreatedAt), s.d.time(u.UpdatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("user %s: %w", u.Name, wharf.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Name, err)
	}
	return nil
}

// User returns a console user, or ErrNotFound.
func (s *Store) User(ctx context.Context, name string) (catalog.User, error) {
	u, err := scanUser(s.c().queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", name, wharf.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("user %s: %w", name, err)
	}
	return u, nil
}

// ListUsers returns every console user ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]catalog.User, error) {
	rows, err := s.c().query(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []catalog.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// SetUserPassword replaces a user's password hash.
func (s *Store) SetUserPassword(ctx context.Context, name, hash string, at time.Time) error {
	res, err := s.c().exec(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?`, hash, s.d.time(at), name)
	if err != nil {
		return fmt.Errorf("set password of user %s: %w", name, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("set password of user %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("user %s: %w", name, wharf.ErrNotFound)
	}
	return nil
}

// DeleteUser removes a user.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	res, err := s.c().exec(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("user %s: %w", name, wharf.ErrNotFound)
	}
	return nil
}
