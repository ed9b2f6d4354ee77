package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"time"
)

// Cookie names.
const (
	sessionCookie = "wharf_session"
	loginCookie   = "wharf_login" // pairs with the login form's CSRF field
)

// maxSessions bounds the sessions kept; at the bound the oldest goes.
const maxSessions = 10_000

// session is one logged-in browser. Fields other than flashes and seen are
// set at creation and never change.
type session struct {
	key     string // hex SHA-256 of the cookie value
	user    string // the user name, or "admin" for the admin token
	byToken bool   // logged in with the admin token
	pwHash  string // the user's password hash at login
	csrf    string
	created time.Time

	// guarded by sessionStore.mu
	seen    time.Time
	flashes []flash
}

// flash is a one-time message shown on the next page.
type flash struct {
	Level string // "ok", "info", "warn", "error"
	Text  string
}

// sessionStore keeps sessions in memory. It is safe for concurrent use.
type sessionStore struct {
	idle, maxAge time.Duration
	now          func() time.Time

	mu sync.Mutex
	m  map[string]*session
}

func newSessionStore(idle, maxAge time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{idle: idle, maxAge: maxAge, now: now, m: map[string]*session{}}
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
func (s *sessionStore) create(user string, byToken bool, pwHash string) (string, *session) {
	id := randomToken()
	now := s.now()
	sess := &session{key: hashID(id), user: user, byToken: byToken, pwHash: pwHash, csrf: randomToken(), created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now) // logins are rare; this keeps ended sessions from piling up
	if len(s.m) >= maxSessions {
		var oldest *session
		for _, o := range s.m {
			if oldest == nil || o.seen.Before(oldest.seen) {
				oldest = o
			}
		}
		delete(s.m, oldest.key)
	}
	s.m[sess.key] = sess
	return id, sess
}

func (s *sessionStore) expiredLocked(sess *session, now time.Time) bool {
	return now.Sub(sess.seen) > s.idle || now.Sub(sess.created) > s.maxAge
}

func (s *sessionStore) sweepLocked(now time.Time) {
	for k, sess := range s.m {
		if s.expiredLocked(sess, now) {
			delete(s.m, k)
		}
	}
}

// get returns the live session the cookie value names, or nil, and
// records the use.
func (s *sessionStore) get(id string) *session {
	if id == "" {
		return nil
	}
	key := hashID(id)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[key]
	if sess == nil {
		return nil
	}
	if s.expiredLocked(sess, now) {
		delete(s.m, key)
		return nil
	}
	sess.seen = now
	return sess
}

func (s *sessionStore) delete(sess *session) {
	s.mu.Lock()
	delete(s.m, sess.key)
	s.mu.Unlock()
}

func (s *sessionStore) addFlash(sess *session, level, text string) {
	s.mu.Lock()
	if len(sess.flashes) < 8 {
		sess.flashes = append(sess.flashes, flash{level, text})
	}
	s.mu.Unlock()
}

func (s *sessionStore) takeFlashes(sess *session) []flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := sess.flashes
	sess.flashes = nil
	return f
}

// tokenEqual compares two secrets in constant time; empty never matches.
func tokenEqual(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// loginLimiter is a token bucket per client IP: burst attempts at once,
// then one more every every.
type loginLimiter struct {
	burst int
	every time.Duration
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the limiter's memory; at the bound, full buckets go.
const maxBuckets = 10_000

func newLoginLimiter(burst int, every time.Duration, now func() time.Time) *loginLimiter {
	return &loginLimiter{burst: burst, every: every, now: now, m: map[string]*bucket{}}
}

// allow spends one attempt of the client's budget; when none is left it
// says how long to wait.
func (l *loginLimiter) allow(r *http.Request) (bool, time.Duration) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[ip]
	if b == nil {
		if len(l.m) >= maxBuckets {
			for k, o := range l.m {
				if l.refill(o, now) >= float64(l.burst) {
					delete(l.m, k)
				}
			}
		}
		b = &bucket{tokens: float64(l.burst), at: now}
		l.m[ip] = b
	}
	b.tokens, b.at = l.refill(b, now), now
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) * float64(l.every))
		return false, wait.Round(time.Second) + time.Second
	}
	b.tokens--
	return true, 0
}

func (l *loginLimiter) refill(b *bucket, now time.Time) float64 {
	t := b.tokens + float64(now.Sub(b.at))/float64(l.every)
	return min(t, float64(l.burst))
}
