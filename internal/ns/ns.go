// Package ns assembles the Notification Server: it opens the SQL store and
// the blob store, builds the catalog and the HTTP API, and serves them.
package ns

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/httpguard"
	"github.com/wharf-project/wharf/internal/ns/blobs"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/ns/console"
	"github.com/wharf-project/wharf/internal/ns/httpapi"
	"github.com/wharf-project/wharf/internal/ns/metrics"
	"github.com/wharf-project/wharf/internal/ns/notify"
	"github.com/wharf-project/wharf/internal/ns/sqlstore"
)

// Config configures a Notification Server.
type Config struct {
	// DataDir holds the SQLite database (unless DB names PostgreSQL), the
	// blob store and admin.token.
	DataDir string
	// DB is a PostgreSQL DSN (postgres://...); empty means SQLite in
	// DataDir/wharf.db.
	DB string
	// BlobsDir is the blob store's folder; empty means DataDir/blobs.
	// Replicas on one PostgreSQL database share one (a shared file
	// system).
	BlobsDir string
	// MaxBlobBytes bounds one uploaded file; 0 means the API's default.
	MaxBlobBytes int64
	// ForecastHorizon: a Package Server's volume forecast to fall under
	// its reserve sooner raises an alert; 0 means 14 days.
	ForecastHorizon time.Duration
	// TLSCert and TLSKey, both or neither: Serve speaks HTTPS with this
	// certificate and key (PEM files).
	TLSCert, TLSKey string
	// BehindTLSProxy says a proxy in front terminates TLS: the console's
	// cookies are Secure and every answer carries HSTS, as when serving
	// TLS itself.
	BehindTLSProxy bool
	// Limits bound what a slow or idle client costs (zero: the defaults
	// of package httpguard).
	Limits httpguard.Limits
}

// HTTPS reports whether clients reach the NS over TLS: it serves TLS, or
// a proxy in front does.
func (c Config) HTTPS() bool { return c.TLSCert != "" || c.BehindTLSProxy }

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir: not set (--data)"))
	}
	if c.MaxBlobBytes < 0 {
		errs = append(errs, fmt.Errorf("max blob bytes: %d is negative", c.MaxBlobBytes))
	}
	if c.ForecastHorizon < 0 {
		errs = append(errs, fmt.Errorf("forecast horizon: %s is negative", c.ForecastHorizon))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls: give both a certificate and a key (--tls-cert, --tls-key), or neither"))
	}
	return errors.Join(errs...)
}

// AdminTokenFile is the name of the file, in the data dir, that holds the
// admin token written at the first start.
const AdminTokenFile = "admin.token"

// Server is an opened Notification Server.
type Server struct {
	cfg      Config
	tls      *tls.Config // nil: plain HTTP
	log      *slog.Logger
	store    *sqlstore.Store
	catalog  *catalog.Catalog
	users    *catalog.Users
	api      *httpapi.Server
	metrics  *metrics.Metrics
	stopping atomic.Bool // set when Serve's context ends: not ready any more

	// NewAdminToken is the admin token when this start created it (the
	// first start); empty otherwise.
	NewAdminToken string
}

// Open opens the stores under cfg and, on the first start, creates the
// admin token and writes it to DataDir/admin.token (mode 0600).
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	store, err := sqlstore.Open(ctx, cfg.DB, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	blobsDir := cfg.BlobsDir
	if blobsDir == "" {
		blobsDir = filepath.Join(cfg.DataDir, "blobs")
	}
	bs, err := blobs.Open(blobsDir)
	if err != nil {
		store.Close()
		return nil, err
	}
	// Changes go to the other replicas through PostgreSQL; an NS on SQLite
	// is alone.
	var notifier catalog.Notifier = notify.NewLocal()
	if store.Dialect() == "postgres" {
		if notifier, err = store.PGNotifier(log); err != nil {
			store.Close()
			return nil, err
		}
	}
	met := metrics.New(time.Now, log.With("component", "metrics"))
	cat := catalog.New(store, bs, notifier, time.Now, log, catalog.WithObserver(met), catalog.WithForecastHorizon(cfg.ForecastHorizon))
	met.RegisterFleet(cat)
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	tokenFile := filepath.Join(cfg.DataDir, AdminTokenFile)
	s := &Server{cfg: cfg, tls: tlsCfg, log: log, store: store, catalog: cat, users: catalog.NewUsers(store, time.Now), metrics: met}
	s.api = httpapi.New(cat, bs, log, httpapi.Options{MaxBlobBytes: cfg.MaxBlobBytes,
		// A rotation through this NS rewrites its admin.token, for the
		// scripts of this machine; other replicas' files keep the old one.
		AdminTokenRotated: func(tok string) error { return writeSecret(tokenFile, tok+"\n") }})
	tok, created, err := cat.InitAdminToken(ctx)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("init admin token: %w", err)
	}
	if created {
		if err := writeSecret(tokenFile, tok+"\n"); err != nil {
			store.Close()
			return nil, fmt.Errorf("write admin token: %w", err)
		}
		s.NewAdminToken = tok
	}
	return s, nil
}

// Users is the console users of an NS's store, opened without the rest of
// the NS: what `wharf ns add-user`, `rm-user` and `users` need. Close it
// when done.
type Users struct {
	*catalog.Users
	store *sqlstore.Store
}

// OpenUsers opens the store of the NS whose data dir or PostgreSQL DSN is
// given (as for Config; the NS may be running) for managing its console
// users.
func OpenUsers(ctx context.Context, dataDir, db string) (*Users, error) {
	if dataDir == "" && db == "" {
		return nil, errors.New("no store: set the data dir (and the PostgreSQL DSN for PostgreSQL)")
	}
	store, err := sqlstore.Open(ctx, db, dataDir)
	if err != nil {
		return nil, err
	}
	return &Users{Users: catalog.NewUsers(store, time.Now), store: store}, nil
}

// Close closes the store.
func (u *Users) Close() error { return u.store.Close() }

// RotateAdminTokenOffline replaces the admin token of the NS whose data dir
// or PostgreSQL DSN is given, through its store (the NS may be running):
// the way back in when the admin token is lost. It writes the new token
// to dataDir/admin.token when dataDir is set, and returns it. On
// PostgreSQL the replicas hear of it at once (NOTIFY); a running NS on
// SQLite takes it at its next full resync (catalog.ResyncInterval) or
// restart.
func RotateAdminTokenOffline(ctx context.Context, dataDir, db string, log *slog.Logger) (string, error) {
	if dataDir == "" && db == "" {
		return "", errors.New("no store: set the data dir (and the PostgreSQL DSN for PostgreSQL)")
	}
	store, err := sqlstore.Open(ctx, db, dataDir)
	if err != nil {
		return "", err
	}
	defer store.Close()
	var notifier catalog.Notifier = notify.NewLocal()
	if store.Dialect() == "postgres" {
		if notifier, err = store.PGNotifier(log); err != nil {
			return "", err
		}
	}
	tok, err := catalog.New(store, nil, notifier, time.Now, log).RotateAdminToken(ctx)
	if err != nil {
		return "", err
	}
	if dataDir != "" {
		if err := writeSecret(filepath.Join(dataDir, AdminTokenFile), tok+"\n"); err != nil {
			return tok, fmt.Errorf("admin token replaced, but not written to %s: %w", AdminTokenFile, err)
		}
	}
	return tok, nil
}

func writeSecret(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// The SQL store keeps the console's sessions, for every replica.
var _ console.SessionStore = (*sqlstore.Store)(nil)

// Handler returns the NS's HTTP handler: the API under /api/v1/ and the
// web console at / (the mux sends /api/v1/... to the API, the more
// specific pattern). Console sessions live in the store, so every handler
// and every replica on the store knows them.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.register(mux)
	var h http.Handler = mux
	if s.cfg.HTTPS() {
		h = hsts(h)
	}
	return s.metrics.Instrument(h)
}

// registrar is where routes go: *http.ServeMux.
type registrar interface {
	Handle(pattern string, h http.Handler)
}

// route is one of the NS's own routes (operations).
type route struct {
	pattern, access string
	h               http.Handler
}

func (s *Server) console() *console.Console {
	return console.New(s.catalog, s.users, s.store, s.log, console.Options{SecureCookies: s.cfg.HTTPS()})
}

// register adds every route of the NS to mux: the API, the console, the
// operations endpoints. Each comes from a table with its access rule
// (Routes lists them).
func (s *Server) register(mux registrar) {
	s.api.Register(mux)
	s.console().Register(mux)
	s.registerOps(mux, true)
}

// Route is a route of the NS (a pattern as http.ServeMux takes it) and
// who may call it: an httpapi.Access for the API, a console.Access for the
// console, "anyone" or "admin" for the operations endpoints.
type Route struct {
	Pattern, Access string
}

// Routes lists every route the NS's handler serves, with its access rule.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.api.Routes() {
		out = append(out, Route{Pattern: r.Method + " " + r.Pattern, Access: "api:" + string(r.Access)})
	}
	out = append(out, Route{Pattern: api.Prefix + "/", Access: "api:none"})
	for _, r := range s.console().Routes() {
		out = append(out, Route{Pattern: r.Pattern, Access: "console:" + string(r.Access)})
	}
	for _, r := range s.opsRoutes(true) {
		out = append(out, Route{Pattern: r.pattern, Access: "ops:" + r.access})
	}
	return out
}

// hsts tells browsers to reach this NS over HTTPS only, for a year.
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

// Scheme is "https" when the NS serves TLS, else "http".
func (s *Server) Scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// Serve serves on ln until ctx ends, then shuts down gracefully (waiting up
// to 10 s for requests in flight) and closes the stores.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.store.Close()
	hs := s.cfg.Limits.Server(s.Handler(), s.log)
	hs.BaseContext = func(net.Listener) context.Context { return ctx }
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	catCtx, stopCatalog := context.WithCancel(context.WithoutCancel(ctx))
	catDone := make(chan error, 1)
	go func() { catDone <- s.catalog.Serve(catCtx) }()
	defer func() {
		stopCatalog()
		if err := <-catDone; err != nil {
			s.log.Error("catalog stopped", "err", err)
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("notification server listening", "addr", ln.Addr().String(), "scheme", s.Scheme())
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.stopping.Store(true)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		hs.Close()
	}
	s.log.Info("notification server stopped")
	return nil
}

// ServeCatalog runs what the NS does beside answering requests — applying
// the changes other replicas announce, writing the servers' last
// contacts — until ctx ends: for a server whose Handler is served by
// someone else than Serve (tests). Serve runs it itself.
func (s *Server) ServeCatalog(ctx context.Context) error { return s.catalog.Serve(ctx) }

// Close releases the stores of a server that will not Serve.
func (s *Server) Close() error { return s.store.Close() }
