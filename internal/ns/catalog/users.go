package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-project/wharf/internal/wharf"
)

// User is an administrator who logs in to the NS web console with a name
// and a password. Only the bcrypt hash of the password is kept.
type User struct {
	Name         string // lowercase, see ParseUserName
	PasswordHash string // bcrypt
	CreatedAt    time.Time
	UpdatedAt    time.Time // when the password was last set
}

// Limits on console user names and passwords. bcrypt reads at most 72
// bytes of a password; a longer one is refused rather than cut silently.
const (
	MaxUserName       = 64
	MinPasswordLength = 10
	MaxPasswordBytes  = 72
)

// Users manages the console users: names, bcrypt password hashes, login
// checks. It needs only a UserStore, so a command that manages users opens
// nothing else. It is safe for concurrent use.
type Users struct {
	store UserStore
	now   func() time.Time
}

// NewUsers returns the console users kept in store. now is the clock.
func NewUsers(store UserStore, now func() time.Time) *Users {
	return &Users{store: store, now: now}
}

// PasswordCost is the bcrypt cost of new password hashes.
const PasswordCost = bcrypt.DefaultCost

// ParseUserName checks a console user name and returns it lowercased:
// 1 to 64 characters, letters, digits, '.', '_', '-' and '@', starting with
// a letter or digit.
func ParseUserName(name string) (string, error) {
	if name == "" || len(name) > MaxUserName {
		return "", wharf.Errorf(wharf.ErrInvalid, "user name: want 1 to %d characters", MaxUserName)
	}
	n := strings.ToLower(name)
	for i, r := range n {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("._-@", r)) {
			return "", wharf.Errorf(wharf.ErrInvalid, "user name %q: use letters, digits, '.', '_', '-' and '@', starting with a letter or digit", name)
		}
	}
	return n, nil
}

func checkPassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordLength:
		return wharf.Errorf(wharf.ErrInvalid, "password: want at least %d characters", MinPasswordLength)
	case len(pw) > MaxPasswordBytes:
		return wharf.Errorf(wharf.ErrInvalid, "password: longer than %d bytes", MaxPasswordBytes)
	}
	return nil
}

func hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), PasswordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CreateUser creates a console user with a password; ErrExists when the
// name is taken, ErrInvalid for a bad name or a password that is too short
// or too long.
func (us *Users) CreateUser(ctx context.Context, name, password string) (User, error) {
	n, err := ParseUserName(name)
	if err != nil {
		return User{}, err
	}
	if err := checkPassword(password); err != nil {
		return User{}, err
	}
	h, err := hashPassword(password)
	if err != nil {
		return User{}, err
	}
	now := us.now().UTC().Truncate(time.Microsecond)
	u := User{Name: n, PasswordHash: h, CreatedAt: now, UpdatedAt: now}
	if err := us.store.CreateUser(ctx, u); err != nil {
		return User{}, err
	}
	return u, nil
}

// SetUserPassword replaces a console user's password.
func (us *Users) SetUserPassword(ctx context.Context, name, password string) error {
	n, err := ParseUserName(name)
	if err != nil {
		return fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	h, err := hashPassword(password)
	if err != nil {
		return err
	}
	return us.store.SetUserPassword(ctx, n, h, us.now().UTC().Truncate(time.Microsecond))
}

// DeleteUser removes a console user.
func (us *Users) DeleteUser(ctx context.Context, name string) error {
	n, err := ParseUserName(name)
	if err != nil {
		return fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	return us.store.DeleteUser(ctx, n)
}

// ListUsers lists the console users by name, without their hashes.
func (us *Users) ListUsers(ctx context.Context) ([]User, error) {
	list, err := us.store.ListUsers(ctx)
	for i := range list {
		list[i].PasswordHash = ""
	}
	return list, err
}

// dummyHash is compared against when the user does not exist, so a wrong
// name costs as long as a wrong password and names cannot be probed by
// timing.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("wharf: no such user"), PasswordCost)
	return h
})

// CheckUserPassword returns the user when password is theirs, and an error
// wrapping wharf.ErrUnauthorized (never saying which of the two was wrong)
// otherwise.
func (us *Users) CheckUserPassword(ctx context.Context, name, password string) (User, error) {
	wrong := wharf.Errorf(wharf.ErrUnauthorized, "wrong user name or password")
	n, err := ParseUserName(name)
	if err != nil || len(password) > MaxPasswordBytes {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return User{}, wrong
	}
	u, err := us.store.User(ctx, n)
	if errors.Is(err, wharf.ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return User{}, wrong
	}
	if err != nil {
		return User{}, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return User{}, wrong
	}
	return u, nil
}

// UserPasswordHash returns the current password hash of a user, or an
// error wrapping ErrNotFound: the console compares it with the one seen at
// login to end the sessions of a deleted user or a changed password.
func (us *Users) UserPasswordHash(ctx context.Context, name string) (string, error) {
	n, err := ParseUserName(name)
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	u, err := us.store.User(ctx, n)
	return u.PasswordHash, err
}

// ConsoleSession is a logged-in browser of the web console, kept in the
// store so that every NS replica knows it. The console owns the rules.
type ConsoleSession struct {
	Key          string // hex SHA-256 of the cookie value
	User         string // the user name, or "admin" for the admin token
	ByToken      bool   // logged in with the admin token
	PasswordHash string // the user's password hash at login
	CSRF         string
	Created      time.Time
	Seen         time.Time
	Flashes      string // JSON of the one-time messages for the next page
}
