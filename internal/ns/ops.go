package ns

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Operations endpoints, for load balancers, service managers and
// Prometheus:
//
//	GET /healthz   200 while the process serves: liveness
//	GET /readyz    200 when it can answer (its database answers within
//	               2 s), 503 otherwise and once it is stopping
//	GET /metrics   the Prometheus text format (package metrics)
//
// On the NS's address /metrics takes the admin token (it names every
// server); /healthz and /readyz need none and tell nothing but ok or why
// not. The --metrics-addr listener (ServeOps) serves all three without a
// token: bind it to an address only the monitoring network reaches.

// opsRoutes are the operations endpoints; with token, /metrics takes the
// admin token.
func (s *Server) opsRoutes(token bool) []route {
	var metrics http.Handler = s.metrics.Handler()
	access := "anyone"
	if token {
		metrics, access = s.requireAdmin(metrics), "admin"
	}
	return []route{
		{"GET /healthz", "anyone", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeOps(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{"GET /readyz", "anyone", http.HandlerFunc(s.readyz)},
		{"GET /metrics", access, metrics},
	}
}

// registerOps adds the operations endpoints to mux; with token, /metrics
// takes the admin token.
func (s *Server) registerOps(mux registrar, token bool) {
	for _, r := range s.opsRoutes(token) {
		mux.Handle(r.pattern, r.h)
	}
}

// readyz answers whether the NS can serve requests now.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		writeOps(w, http.StatusServiceUnavailable, map[string]string{"status": "stopping"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("not ready: the database does not answer", "err", err)
		writeOps(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "database": err.Error()})
		return
	}
	writeOps(w, http.StatusOK, map[string]string{"status": "ready", "database": s.store.Dialect()})
}

// requireAdmin answers 401 unless the request carries the admin token.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := ""
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			tok = strings.TrimSpace(h[7:])
		}
		if err := s.catalog.CheckAdminToken(r.Context(), tok); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wharf"`)
			writeOps(w, http.StatusUnauthorized, map[string]string{"error": "the metrics take the admin token (Authorization: Bearer), or use --metrics-addr"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeOps(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeOps serves /healthz, /readyz and /metrics, without a token, on ln
// (the --metrics-addr listener) until ctx ends.
func (s *Server) ServeOps(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	s.registerOps(mux, false)
	hs := s.cfg.Limits.Server(mux, s.log)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("metrics and health listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shut); err != nil {
		hs.Close()
	}
	return nil
}
