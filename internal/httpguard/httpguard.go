// Package httpguard bounds what a slow or idle client costs an HTTP
// server: every listener of Wharf (the NS's API and console, a Package
// Server's downloads, the local admin socket, the metrics listeners) is an
// http.Server built by Limits.Server.
//
//   - Headers: the whole request header must arrive within HeaderTimeout
//     (http.Server.ReadHeaderTimeout), and be at most MaxHeaderBytes.
//   - Body: a request body must arrive within BodyTimeout plus the time
//     its bytes take at MinBodyRate: a large upload going at a decent rate
//     is never cut, a body sent one byte at a time is dropped after
//     BodyTimeout (the read fails, the handler answers 400 and the
//     connection closes). The deadline is lifted once the body is read, so
//     a long poll that follows is not cut.
//   - Idle: a kept-alive connection without a request is closed after
//     IdleTimeout.
//   - Many slow clients at once: the connections that are still sending a
//     request header or body, or idle between requests, are counted; past
//     MaxPending the oldest of them is closed, so the slowest client goes
//     first and a client that sends its request promptly is never the one
//     dropped.
//
// Handlers that never read a body still get a bounded one: net/http
// discards what is left of it after the handler, under the same deadline.
package httpguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits of a server. The zero value of a field means its default.
type Limits struct {
	// HeaderTimeout bounds the arrival of a request's header (default
	// 10 s).
	HeaderTimeout time.Duration
	// BodyTimeout bounds the arrival of a request's body, plus the time
	// its bytes take at MinBodyRate (default 30 s).
	BodyTimeout time.Duration
	// MinBodyRate is the rate a long body must keep, in bytes per second
	// (default 64 KiB/s).
	MinBodyRate int64
	// IdleTimeout closes a kept-alive connection without a request
	// (default 2 minutes).
	IdleTimeout time.Duration
	// MaxPending bounds the connections sending a request or idle between
	// two; past it the oldest is closed (default 4096).
	MaxPending int
	// MaxHeaderBytes bounds a request header (default 64 KiB).
	MaxHeaderBytes int
}

// Defaults of Limits.
const (
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultBodyTimeout    = 30 * time.Second
	DefaultMinBodyRate    = 64 << 10
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultMaxPending     = 4096
	DefaultMaxHeaderBytes = 64 << 10
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.MinBodyRate <= 0 {
		l.MinBodyRate = DefaultMinBodyRate
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxPending <= 0 {
		l.MaxPending = DefaultMaxPending
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// Server returns an http.Server serving h under l (its defaults filled
// in). Set TLSConfig, BaseContext and the like on it before serving; keep
// its ConnState and ConnContext, which the guard uses.
func (l Limits) Server(h http.Handler, log *slog.Logger) *http.Server {
	l = l.WithDefaults()
	g := &guard{limits: l, pending: map[net.Conn]time.Time{}, log: log}
	// HTTP/1.1 only: its header, body and idle phases are what the limits
	// bound; Wharf's clients (PSs, wharf get, browsers) need nothing else.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return &http.Server{
		Protocols:         &protocols,
		Handler:           g.body(h),
		ReadHeaderTimeout: l.HeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ConnState:         g.connState,
		ConnContext:       func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

type connKey struct{}

// guard counts the connections that are sending something (or idle) and
// closes the oldest past the limit.
type guard struct {
	limits Limits
	log    *slog.Logger

	mu      sync.Mutex
	pending map[net.Conn]time.Time // since when each is waiting on its client
	dropped int64
}

func (g *guard) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew, http.StateIdle:
		g.wait(c)
	default: // active (its header is in), hijacked, closed
		g.done(c)
	}
}

// wait counts c as waiting on its client from now, and closes the oldest
// waiting connection when there are too many.
func (g *guard) wait(c net.Conn) {
	g.mu.Lock()
	g.pending[c] = time.Now()
	var victim net.Conn
	if len(g.pending) > g.limits.MaxPending {
		var oldest time.Time
		for pc, since := range g.pending {
			if victim == nil || since.Before(oldest) {
				victim, oldest = pc, since
			}
		}
		delete(g.pending, victim)
		g.dropped++
	}
	g.mu.Unlock()
	if victim != nil {
		g.log.Debug("too many slow or idle connections: closing the oldest", "remote", remote(victim))
		victim.Close()
	}
}

func (g *guard) done(c net.Conn) {
	g.mu.Lock()
	delete(g.pending, c)
	g.mu.Unlock()
}

// body puts a deadline on the arrival of every request body (see the
// package documentation) and counts the connection as waiting on its
// client while it arrives.
func (g *guard) body(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		conn, _ := r.Context().Value(connKey{}).(net.Conn)
		b := &deadlineBody{rc: r.Body, ctl: http.NewResponseController(w), start: time.Now(), limits: g.limits}
		b.extend()
		if conn != nil {
			g.wait(conn)
			b.onDone = func() { g.done(conn) }
		}
		r.Body = b
		defer b.finish()
		h.ServeHTTP(w, r)
	})
}

// deadlineBody moves the connection's read deadline as the body arrives:
// start + BodyTimeout + read/MinBodyRate.
type deadlineBody struct {
	rc     io.ReadCloser
	ctl    *http.ResponseController
	start  time.Time
	limits Limits
	read   int64
	ended  bool
	onDone func()
}

func (b *deadlineBody) extend() {
	d := b.limits.BodyTimeout + time.Duration(float64(b.read)/float64(b.limits.MinBodyRate)*float64(time.Second))
	_ = b.ctl.SetReadDeadline(b.start.Add(d))
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.read += int64(n)
	switch {
	case err != nil:
		b.finish()
	case n > 0:
		b.extend()
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.rc.Close() }

// finish marks the body read (or abandoned): the connection no longer
// waits on its client. The read deadline stays: net/http lifts it when it
// starts watching the connection for the next request, and a body the
// handler did not read is discarded under it.
func (b *deadlineBody) finish() {
	if b.ended {
		return
	}
	b.ended = true
	if b.onDone != nil {
		b.onDone()
	}
}

// remote names a connection's peer ("" on a socket without one).
func remote(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// File is the [limits] section of the NS's and the PS's TOML files:
// durations as Go writes them ("10s", "2m").
type File struct {
	HeaderTimeout *string `toml:"header_timeout"`
	BodyTimeout   *string `toml:"body_timeout"`
	IdleTimeout   *string `toml:"idle_timeout"`
	MaxPending    *int    `toml:"max_pending"`
}

// Apply sets the limits f gives on l; a bad value is an error naming its
// key.
func (f File) Apply(l *Limits) error {
	var errs []error
	for _, d := range []struct {
		key string
		v   *string
		dst *time.Duration
	}{{"header_timeout", f.HeaderTimeout, &l.HeaderTimeout}, {"body_timeout", f.BodyTimeout, &l.BodyTimeout},
		{"idle_timeout", f.IdleTimeout, &l.IdleTimeout}} {
		if d.v == nil {
			continue
		}
		v, err := time.ParseDuration(*d.v)
		if err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("limits.%s %q: want a positive duration such as 10s", d.key, *d.v))
			continue
		}
		*d.dst = v
	}
	if f.MaxPending != nil {
		if *f.MaxPending <= 0 {
			errs = append(errs, fmt.Errorf("limits.max_pending %d: want 1 or more", *f.MaxPending))
		} else {
			l.MaxPending = *f.MaxPending
		}
	}
	return errors.Join(errs...)
}
