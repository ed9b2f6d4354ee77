package serve

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wharf-project/wharf/internal/ps/store"
)

// Gate wraps the package handler for exclusive relocation (SPEC §6.4):
// while it is closed, every request for a package a relocation moves
// answers 503 Service Unavailable with a Retry-After header; requests for a
// custom-location package, which relocation never touches (SPEC §2), and
// anything else go through. It is open when made. Its methods are safe for
// concurrent use.
type Gate struct {
	next       http.Handler
	custom     Custom
	retryAfter atomic.Int64 // seconds; 0 while open
}

// Custom tells whether a package keeps a custom location, which a
// relocation never moves; *store.Store implements it. It is asked once per
// package request while the gate is closed, so it answers from memory.
type Custom interface {
	IsCustom(id string) bool
}

var _ Custom = (*store.Store)(nil)

// NewGate returns an open gate in front of next; custom, when not nil,
// names the packages that stay served while it is closed.
func NewGate(next http.Handler, custom Custom) *Gate { return &Gate{next: next, custom: custom} }

// Unavailable closes the gate: package requests answer 503 with
// Retry-After d (rounded up to a second).
func (g *Gate) Unavailable(d time.Duration) {
	g.retryAfter.Store(max(1, int64((d+time.Second-1)/time.Second)))
}

// Available opens the gate again.
func (g *Gate) Available() { g.retryAfter.Store(0) }

func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s := g.retryAfter.Load(); s > 0 && strings.HasPrefix(r.URL.Path, Prefix) && !g.stays(r.URL.Path) {
		w.Header().Set("Retry-After", strconv.FormatInt(s, 10))
		writeError(w, r, http.StatusServiceUnavailable,
			"this package server is relocating its package store; try again after "+strconv.FormatInt(s, 10)+" seconds")
		return
	}
	g.next.ServeHTTP(w, r)
}

// stays reports whether the request for path is for a custom-location
// package.
func (g *Gate) stays(path string) bool {
	if g.custom == nil {
		return false
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(path, Prefix), "/")
	return g.custom.IsCustom(id)
}
