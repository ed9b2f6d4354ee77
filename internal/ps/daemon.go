// Package ps assembles a Package Server: the state DB (store), the
// downloader (fetch), the download handlers (serve), the local admin
// endpoint (admin) and the loop that long-polls the Notification Server for
// this server's configuration. Daemon.Serve runs them all until its context
// ends.
//
// # Install dir
//
//	<install dir>/credential.json   NS URL, name, credential, signing key (0600)
//	<install dir>/state/ps.db       the state DB (SQLite, WAL)
//	<install dir>/admin.sock        the local admin endpoint (0600)
//	<install dir>/Package Delivery/ the primary location, a store root
//
// With "allow usage of all fixed drives" on (Package Server Settings
// policy, AgentSettings.AllFixedDrives), packages that do not fit on the
// primary volume above its reserve (storage.reserve) go to <volume
// root>/Package Delivery/ on another eligible volume (storage.volumes
// restricts which): see package place. The switch is read from every
// configuration the loop applies, so a policy change needs no restart.
//
// See package store for the layout of a store root and package fetch for the
// download protocol.
//
// # Start
//
// The first start enrolls with the one-time token (Config.EnrollToken) and
// keeps the result in credential.json; later starts reuse it and ignore a
// token. Before serving anything, the daemon rolls every open entry of the
// relocation journal forward or back (location.Controller.Recover), so
// the state DB names a whole folder for every package, then checks the
// store roots' markers and recovers interrupted downloads
// (fetch.Fetcher.Recover). A relocation attempt that was under way goes on.
//
// # Relocation
//
// The storage location of the Package Server Settings policy
// (AgentSettings.StorageLocation) and its relocation mode go, with the
// server tasks, to the relocation controller (package relocation) with every
// configuration the loop applies; it moves the store when the location
// changes, retries, reports to the NS and answers check-location tasks. See
// relocation_wiring.go for how downloads, serving and removals are paused or
// held back during an attempt. Metrics (Prometheus, the PS's own registry)
// are served at GET /metrics on the admin socket.
package ps

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/serve"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/tlsca"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Daemon is one Package Server.
type Daemon struct {
	cfg   Config
	base  *slog.Logger // for the parts, which narrow it to their component
	log   *slog.Logger // the daemon's own
	ready chan struct{}
	id    identity // set once, before ready is closed
}

// identity is who the running daemon is and where it listens.
type identity struct {
	name        string
	nsURL       string
	url         string
	addr        string
	metricsAddr string // "" without a metrics listener
}

// New checks cfg and returns a Daemon; nothing starts until Serve.
func New(cfg Config, log *slog.Logger) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.InstallDir)
	if err != nil {
		return nil, fmt.Errorf("install dir %s: %w", cfg.InstallDir, err)
	}
	cfg.InstallDir = dir
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.HTTPClient == nil {
		t, err := tlsca.Transport(cfg.CAFile, 0)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		cfg.HTTPClient = &http.Client{Transport: t}
	}
	if cfg.Facts == nil {
		cfg.Facts = volume.New()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Daemon{cfg: cfg, base: log, log: log.With("component", "ps"), ready: make(chan struct{})}, nil
}

// Ready is closed once the daemon is enrolled, has recovered its store, and
// its listeners accept connections.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Addr returns the address packages are served on; it waits for Ready.
func (d *Daemon) Addr() string { <-d.ready; return d.id.addr }

// URL returns the base URL the PS enrolled with; it waits for Ready.
func (d *Daemon) URL() string { <-d.ready; return d.id.url }

// MetricsAddr returns the address of the metrics listener ("" without
// one); it waits for Ready.
func (d *Daemon) MetricsAddr() string { <-d.ready; return d.id.metricsAddr }

// Name returns the enrolled name; it waits for Ready.
func (d *Daemon) Name() string { <-d.ready; return d.id.name }

// Serve runs the Package Server until ctx ends, then shuts down gracefully
// and returns nil; it returns an error when it cannot start or a part of it
// fails. It opens what the parts need (the admin socket, the state DB, the
// listener, the credential), assembles every part once (assemble), recovers
// the store, and then runs them.
func (d *Daemon) Serve(ctx context.Context) (err error) {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.InstallDir, 0o755); err != nil {
		return fmt.Errorf("create install dir: %w", err)
	}
	adminLn, err := admin.Listen(admin.SocketPath(cfg.InstallDir))
	if err != nil {
		return err
	}
	defer adminLn.Close()
	st, err := store.Open(ctx, filepath.Join(cfg.InstallDir, "state", "ps.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate %s and key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	var opsLn net.Listener
	if cfg.MetricsAddr != "" {
		if opsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen on %s (metrics_addr): %w", cfg.MetricsAddr, err)
		}
		defer opsLn.Close()
	}
	url, err := d.advertisedURL(ln.Addr(), tlsCfg != nil)
	if err != nil {
		return err
	}
	cred, err := d.credential(ctx, url)
	if err != nil {
		return err
	}
	nsURL := cred.NSURL
	if cfg.NS != "" && cfg.NS != cred.NSURL {
		d.log.Warn("using --ns, not the NS URL of the enrollment", "ns", cfg.NS, "enrolled_ns", cred.NSURL)
		nsURL = cfg.NS
	}
	client, err := apiclient.New(nsURL, cred.Credential, cfg.HTTPClient)
	if err != nil {
		return err
	}
	key, err := cred.key()
	if err != nil {
		return err
	}
	id := identity{name: cred.Name, nsURL: nsURL, url: url, addr: ln.Addr().String()}
	base := d.base.With("server", cred.Name)
	log := base.With("component", "ps")
	p, err := assemble(cfg, id, cred, st, client, key, base)
	if err != nil {
		return err
	}
	for _, problem := range p.placer.CheckVolumes() {
		log.Warn(problem)
	}
	if err := p.recover(ctx); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	run := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	web := serve.NewServer(p.ops.wrap(p.gate), cfg.Limits, base)
	web.TLSConfig = tlsCfg
	adm := admin.NewServer(p.admin, base)
	run("serve packages", func() error {
		if tlsCfg != nil {
			return web.ServeTLS(ln, "", "")
		}
		return web.Serve(ln)
	})
	run("admin endpoint", func() error { return adm.Serve(adminLn) })
	if opsLn != nil {
		run("metrics listener", func() error { return p.ops.serve(runCtx, opsLn, log) })
	}
	run("fetch", func() error { return p.fetcher.Serve(runCtx) })
	run("relocation", func() error { return p.location.Serve(runCtx) })
	run("link audit", func() error { return p.links.Serve(runCtx) })
	run("health reports", func() error { return p.health.Serve(runCtx) })
	run("config loop", func() error { p.poller.run(runCtx); return nil })
	run("credential", func() error { return p.keyring.Serve(runCtx) })

	if opsLn != nil {
		id.metricsAddr = opsLn.Addr().String()
		log.Info("metrics and health listening", "addr", id.metricsAddr)
	}
	log.Info("package server ready", "addr", id.addr, "url", url, "ns", nsURL,
		"install_dir", cfg.InstallDir, "storage_path", p.location.StoragePath(), "primary", p.placer.Primary(),
		"reserve", cfg.Storage.Reserve.String(), "rotation_volumes", cfg.Storage.Volumes)
	d.id = id
	p.ops.ready.Store(true)
	close(d.ready)

	<-runCtx.Done()
	p.ops.stopping.Store(true)
	log.Info("package server stopping")
	shutCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	var errs []error
	if err := web.Shutdown(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("shut down package serving: %w", err))
		web.Close()
	}
	p.handler.Close() // the package files and folders kept open
	if err := adm.Shutdown(shutCtx); err != nil {
		adm.Close()
	}
	wg.Wait()
	if cause := context.Cause(runCtx); ctx.Err() == nil && cause != nil {
		errs = append(errs, cause)
	}
	return errors.Join(errs...)
}

// credential loads the credential, or enrolls when there is none.
func (d *Daemon) credential(ctx context.Context, url string) (credential, error) {
	cfg := d.cfg
	cred, ok, err := loadCredential(cfg.InstallDir)
	if err != nil {
		return cred, err
	}
	if ok {
		if cfg.EnrollToken != "" {
			d.log.Warn("ignoring the enrollment token: this PS is enrolled already (delete credential.json to enroll again)",
				"credential", cred, "path", filepath.Join(cfg.InstallDir, CredentialName))
		}
		if cfg.Name != "" {
			if n, err := wharf.ParseServerName(cfg.Name); err == nil && string(n) != cred.Name {
				return cred, fmt.Errorf("name %q differs from the enrolled name %q in %s: drop --name, or delete the file to enroll again",
					cfg.Name, cred.Name, filepath.Join(cfg.InstallDir, CredentialName))
			}
		}
		return cred, nil
	}
	if cfg.EnrollToken == "" {
		return cred, fmt.Errorf("not enrolled: start once with --enroll TOKEN (from `wharf ns enroll-token`) and --ns URL")
	}
	if cfg.NS == "" {
		return cred, fmt.Errorf("enroll: no notification server URL: set --ns")
	}
	name := cfg.Name
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return cred, fmt.Errorf("enroll: no --name and no host name: %w", err)
		}
		name = strings.SplitN(h, ".", 2)[0]
	}
	anon, err := apiclient.New(cfg.NS, "", cfg.HTTPClient)
	if err != nil {
		return cred, err
	}
	enr, err := anon.Enroll(ctx, api.EnrollRequest{Token: cfg.EnrollToken, Name: name, OS: runtime.GOOS, URL: url})
	if err != nil {
		return cred, fmt.Errorf("enroll with %s as %s: %w", cfg.NS, name, err)
	}
	if _, err := hex.DecodeString(enr.SigningKey); err != nil || enr.SigningKey == "" {
		return cred, fmt.Errorf("enroll with %s: the NS sent an invalid signing key", cfg.NS)
	}
	cred = credential{NSURL: anon.BaseURL(), Name: enr.Name, Credential: enr.Credential, SigningKey: enr.SigningKey, EnrolledAt: time.Now().UTC()}
	if err := saveCredential(cfg.InstallDir, cred); err != nil {
		return cred, fmt.Errorf("enrolled as %s but %w", enr.Name, err)
	}
	d.log.Info("enrolled", "credential", cred, "url", url)
	return cred, nil
}

// advertisedURL is Config.URL, or http(s)://host:port of the listener, with
// the host name for an unspecified host.
func (d *Daemon) advertisedURL(bound net.Addr, https bool) (string, error) {
	if d.cfg.URL != "" {
		return strings.TrimRight(d.cfg.URL, "/"), nil
	}
	host, _, err := net.SplitHostPort(d.cfg.Addr)
	if err != nil {
		return "", fmt.Errorf("addr %q: %w", d.cfg.Addr, err)
	}
	_, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			return "", fmt.Errorf("no --url and no host name: %w", err)
		}
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}
