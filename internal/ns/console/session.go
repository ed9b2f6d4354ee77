package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Cookie names.
const (
	sessionCookie = "wharf_session"
	loginCookie   = "wharf_login" // pairs with the login form's CSRF field
)

// session is one logged-in browser, as read for one request.
type session struct {
	key     string // hex SHA-256 of the cookie value
	user    string // the user name, or "admin" for the admin token
	byToken bool   // logged in with the admin token
	pwHash  string // the user's password hash at login
	csrf    string
	created time.Time
	seen    time.Time
}

// flash is a one-time message shown on the next page.
type flash struct {
	Level string // "ok", "info", "warn", "error"
	Text  string
}

// SessionStore keeps console sessions and login rate limits where every NS
// replica on the same store sees them (the SQL store). It is safe for
// concurrent use.
type SessionStore interface {
	// CreateSession stores a new session.
	CreateSession(ctx context.Context, s catalog.ConsoleSession) error
	// Session returns the session of a key, or an error wrapping
	// wharf.ErrNotFound.
	Session(ctx context.Context, key string) (catalog.ConsoleSession, error)
	// TouchSession records a use of the session.
	TouchSession(ctx context.Context, key string, seen time.Time) error
	// UpdateSessionFlashes replaces the session's flashes by fn's result,
	// atomically.
	UpdateSessionFlashes(ctx context.Context, key string, fn func(string) string) error
	// DeleteSession removes a session; a missing one is not an error.
	DeleteSession(ctx context.Context, key string) error
	// DeleteExpiredSessions removes sessions last seen before seenBefore
	// or created before createdBefore.
	DeleteExpiredSessions(ctx context.Context, seenBefore, createdBefore time.Time) error
	// TakeLoginToken spends one attempt of the client's token bucket
	// (burst at once, then one more every every); when none is left it
	// says how long until one is.
	TakeLoginToken(ctx context.Context, client string, burst int, every time.Duration, now time.Time) (ok bool, wait time.Duration, err error)
}

// sessionStore applies the console's session rules (idle time, maximum
// age, flashes) over a SessionStore.
type sessionStore struct {
	st           SessionStore
	idle, maxAge time.Duration
	now          func() time.Time
}

func newSessionStore(st SessionStore, idle, maxAge time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{st: st, idle: idle, maxAge: maxAge, now: now}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("console: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// create starts a session and returns the cookie value that names it.
func (s *sessionStore) create(ctx context.Context, user string, byToken bool, pwHash string) (string, error) {
	id := randomToken()
	now := s.now()
	// Logins are rare; this keeps ended sessions from piling up.
	if err := s.st.DeleteExpiredSessions(ctx, now.Add(-s.idle), now.Add(-s.maxAge)); err != nil {
		return "", err
	}
	cs := catalog.ConsoleSession{Key: hashID(id), User: user, ByToken: byToken, PasswordHash: pwHash, CSRF: randomToken(),
		Created: now, Seen: now}
	if err := s.st.CreateSession(ctx, cs); err != nil {
		return "", err
	}
	return id, nil
}

// get returns the live session the cookie value names, or nil, and
// records the use (at most once per touchEvery, to spare the store a
// write per page).
func (s *sessionStore) get(ctx context.Context, id string) (*session, error) {
	if id == "" {
		return nil, nil
	}
	cs, err := s.st.Session(ctx, hashID(id))
	if errors.Is(err, wharf.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if now.Sub(cs.Seen) > s.idle || now.Sub(cs.Created) > s.maxAge {
		return nil, s.st.DeleteSession(ctx, cs.Key)
	}
	if now.Sub(cs.Seen) > min(s.idle/20, time.Minute) {
		if err := s.st.TouchSession(ctx, cs.Key, now); err != nil {
			return nil, err
		}
		cs.Seen = now
	}
	return &session{key: cs.Key, user: cs.User, byToken: cs.ByToken, pwHash: cs.PasswordHash, csrf: cs.CSRF,
		created: cs.Created, seen: cs.Seen}, nil
}

func (s *sessionStore) delete(ctx context.Context, sess *session) error {
	return s.st.DeleteSession(ctx, sess.key)
}

// maxFlashes bounds the messages waiting for a session's next page.
const maxFlashes = 8

func (s *sessionStore) addFlash(ctx context.Context, sess *session, level, text string) error {
	return s.st.UpdateSessionFlashes(ctx, sess.key, func(cur string) string {
		list := decodeFlashes(cur)
		if len(list) >= maxFlashes {
			return cur
		}
		b, _ := json.Marshal(append(list, flash{level, text}))
		return string(b)
	})
}

func (s *sessionStore) takeFlashes(ctx context.Context, sess *session) ([]flash, error) {
	var out []flash
	err := s.st.UpdateSessionFlashes(ctx, sess.key, func(cur string) string {
		out = decodeFlashes(cur)
		return ""
	})
	return out, err
}

func decodeFlashes(s string) []flash {
	var list []flash
	if s != "" {
		_ = json.Unmarshal([]byte(s), &list) // written by addFlash only
	}
	return list
}

// tokenEqual compares two secrets in constant time; empty never matches.
func tokenEqual(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// loginLimiter is a token bucket per client IP, kept in the store so
// every replica counts the same attempts: burst attempts at once, then one
// more every every.
type loginLimiter struct {
	st    SessionStore
	burst int
	every time.Duration
	now   func() time.Time
}

func newLoginLimiter(st SessionStore, burst int, every time.Duration, now func() time.Time) *loginLimiter {
	return &loginLimiter{st: st, burst: burst, every: every, now: now}
}

// allow spends one attempt of the client's budget; when none is left it
// says how long to wait.
func (l *loginLimiter) allow(r *http.Request) (bool, time.Duration, error) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	ok, wait, err := l.st.TakeLoginToken(r.Context(), ip, l.burst, l.every, l.now())
	if err != nil || ok {
		return ok, 0, err
	}
	return false, wait.Round(time.Second) + time.Second, nil
}
