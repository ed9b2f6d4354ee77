package serve

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Gate wraps the package handler for exclusive relocation (SPEC §6.4):
// while it is closed, every request under Prefix answers 503 Service
// Unavailable with a Retry-After header; anything else goes through. It is
// open when made. Its methods are safe for concurrent use.
type Gate struct {
	next       http.Handler
	retryAfter atomic.Int64 // seconds; 0 while open
}

// NewGate returns an open gate in front of next.
func NewGate(next http.Handler) *Gate { return &Gate{next: next} }

// Unavailable closes the gate: package requests answer 503 with
// Retry-After d (rounded up to a second).
func (g *Gate) Unavailable(d time.Duration) {
	g.retryAfter.Store(max(1, int64((d+time.Second-1)/time.Second)))
}

// Available opens the gate again.
func (g *Gate) Available() { g.retryAfter.Store(0) }

func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s := g.retryAfter.Load(); s > 0 && strings.HasPrefix(r.URL.Path, Prefix) {
		w.Header().Set("Retry-After", strconv.FormatInt(s, 10))
		writeError(w, r, http.StatusServiceUnavailable,
			"this package server is relocating its package store; try again after "+strconv.FormatInt(s, 10)+" seconds")
		return
	}
	g.next.ServeHTTP(w, r)
}
