// Package devcluster runs a Notification Server and one Package Server in
// one process, through the same code as production: `wharf dev` uses it,
// and so can integration tests. Everything lives under one data folder and
// listens on 127.0.0.1.
//
//	<data>/ns/        the NS data dir (SQLite, blobs, admin.token)
//	<data>/client.token  the client token "dev" (wharf get), 0600
//	<data>/ps/        the PS install dir (credential, state DB, Package Delivery)
//	<data>/demo/      the files of the demo package
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ns"
	"github.com/wharf-project/wharf/internal/ps"
	"github.com/wharf-project/wharf/internal/publish"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Config configures a dev cluster.
type Config struct {
	DataDir string // required
	NSAddr  string // default 127.0.0.1:8080
	PSAddr  string // default 127.0.0.1:0 (any free port)
	PSName  string // default "dev-ps"
	// PSConfig, when set, is applied to the PS configuration before start
	// (tests use it for small reserves, short intervals, a TOML file).
	PSConfig func(*ps.Config)
	Log      *slog.Logger
}

// Cluster is a running dev cluster.
type Cluster struct {
	NSURL      string
	AdminToken string
	// ClientToken reads (wharf get): the dev cluster's client token
	// "dev", kept in <data>/client.token across restarts.
	ClientToken string
	PSURL       string
	PSName      string
	PSDir       string
	Demo        api.PackageSummary

	done chan error
}

// DemoName is the name of the demo package.
const DemoName = "wharf-demo"

// Start starts the NS and the PS, publishes the demo package and waits
// until the PS has it ready. Both stop when ctx ends; Wait then returns.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("dev cluster: no data dir")
	}
	if cfg.NSAddr == "" {
		cfg.NSAddr = "127.0.0.1:8080"
	}
	if cfg.PSAddr == "" {
		cfg.PSAddr = "127.0.0.1:0"
	}
	if cfg.PSName == "" {
		cfg.PSName = "dev-ps"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	nsDir, psDir := filepath.Join(cfg.DataDir, "ns"), filepath.Join(cfg.DataDir, "ps")

	srv, err := ns.Open(ctx, ns.Config{DataDir: nsDir}, cfg.Log.With("part", "ns"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.NSAddr)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.NSAddr, err)
	}
	c := &Cluster{NSURL: "http://" + ln.Addr().String(), PSName: cfg.PSName, PSDir: psDir, done: make(chan error, 2)}
	ctx, cancel := context.WithCancel(ctx)
	nsDone := make(chan error, 1)
	go func() { nsDone <- srv.Serve(ctx, ln) }()
	fail := func(err error) (*Cluster, error) {
		cancel()
		<-nsDone
		return nil, err
	}

	c.AdminToken = srv.NewAdminToken
	if c.AdminToken == "" {
		data, err := os.ReadFile(filepath.Join(nsDir, ns.AdminTokenFile))
		if err != nil {
			return fail(fmt.Errorf("dev cluster: read the admin token: %w", err))
		}
		c.AdminToken = strings.TrimSpace(string(data))
	}
	admin, err := apiclient.New(c.NSURL, c.AdminToken, nil)
	if err != nil {
		return fail(err)
	}

	pcfg := ps.DefaultConfig()
	pcfg.InstallDir, pcfg.NS, pcfg.Name, pcfg.Addr = psDir, c.NSURL, cfg.PSName, cfg.PSAddr
	if _, err := os.Stat(filepath.Join(psDir, ps.CredentialName)); errors.Is(err, os.ErrNotExist) {
		tok, err := admin.CreateEnrollToken(ctx)
		if err != nil {
			return fail(fmt.Errorf("dev cluster: enrollment token: %w", err))
		}
		pcfg.EnrollToken = tok.Token
	}
	if cfg.PSConfig != nil {
		cfg.PSConfig(&pcfg)
	}
	d, err := ps.New(pcfg, cfg.Log.With("part", "ps"))
	if err != nil {
		return fail(err)
	}
	psDone := make(chan error, 1)
	go func() { psDone <- d.Serve(ctx) }()
	select {
	case <-d.Ready():
	case err := <-psDone:
		return fail(fmt.Errorf("dev cluster: package server: %w", err))
	case <-time.After(60 * time.Second):
		return fail(errors.New("dev cluster: package server not ready after 60s"))
	}
	c.PSURL = d.URL()

	demo, err := writeDemo(filepath.Join(cfg.DataDir, "demo"))
	if err != nil {
		return fail(err)
	}
	res, err := publish.Publish(ctx, admin, demo, api.PackageManifest{Name: DemoName, Version: "1.0",
		Assignment: api.Assignment{All: true}}, publish.Options{})
	if err != nil {
		return fail(fmt.Errorf("dev cluster: publish the demo package: %w", err))
	}
	c.Demo = res.Package
	if err := waitReady(ctx, admin, c.Demo.ID, 60*time.Second); err != nil {
		return fail(err)
	}
	if c.ClientToken, err = clientToken(ctx, admin, filepath.Join(cfg.DataDir, "client.token")); err != nil {
		return fail(err)
	}
	go func() {
		err := errors.Join(<-psDone, <-nsDone)
		cancel()
		c.done <- err
	}()
	return c, nil
}

// Wait waits until both servers stopped and returns their errors.
func (c *Cluster) Wait() error { return <-c.done }

// clientToken returns the dev cluster's client token: the one kept in
// path when the NS still takes it, else a new one (named "dev", replacing
// any older), kept there.
func clientToken(ctx context.Context, admin *apiclient.Client, path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(data))
		c, err := apiclient.New(admin.BaseURL(), tok, nil)
		if err != nil {
			return "", err
		}
		if _, err := c.ListPackages(ctx, devcheck, ""); err == nil {
			return tok, nil
		}
	}
	list, err := admin.ListClientTokens(ctx)
	if err != nil {
		return "", fmt.Errorf("dev cluster: client tokens: %w", err)
	}
	for _, t := range list {
		if t.Name == "dev" {
			if err := admin.RevokeClientToken(ctx, "dev"); err != nil && !errors.Is(err, wharf.ErrNotFound) {
				return "", fmt.Errorf("dev cluster: client token: %w", err)
			}
		}
	}
	t, err := admin.CreateClientToken(ctx, "dev")
	if err != nil {
		return "", fmt.Errorf("dev cluster: client token: %w", err)
	}
	if err := os.WriteFile(path, []byte(t.Token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("dev cluster: keep the client token: %w", err)
	}
	return t.Token, nil
}

// devcheck is a package name only used to try a client token.
const devcheck = "wharf-dev-check"

// waitReady polls until some PS reports the package ready.
func waitReady(ctx context.Context, c *apiclient.Client, id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cb, err := c.Codebases(ctx, id)
		if err == nil && len(cb.Codebases) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dev cluster: demo package %s not ready after %s (last error: %v)", id, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeDemo writes the demo package's files (the same bytes every time,
// so a restart republishes the identical package).
func writeDemo(dir string) (string, error) {
	files := map[string]string{
		"README.txt":         "Wharf demo package.\nDownloaded with `wharf get " + DemoName + "`.\n",
		"bin/hello.sh":       "#!/bin/sh\necho 'Hello from a Wharf package'\n",
		"data/numbers.txt":   numbers(2000),
		"docs/CHANGELOG.txt": "1.0 first release of the demo package\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("dev cluster: demo package: %w", err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return "", fmt.Errorf("dev cluster: demo package: %w", err)
		}
	}
	return dir, nil
}

func numbers(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.String()
}
