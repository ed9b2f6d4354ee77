package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/httpguard"
	"github.com/wharf-project/wharf/internal/ns"
)

func init() { register(newNSCmd) }

func newNSCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "ns", Short: "Run and administer the Notification Server"}
	cmd.AddCommand(newNSServeCmd(e), newNSEnrollTokenCmd(e), newNSRotateAdminCmd(e))
	cmd.AddCommand(nsUserCommands(e)...)
	return cmd
}

// nsFileConfig is the TOML file of `wharf ns serve --config`.
type nsFileConfig struct {
	Data         string `toml:"data"`
	Addr         string `toml:"addr"`
	DB           string `toml:"db"`
	Blobs        string `toml:"blobs"`
	MaxBlobBytes int64  `toml:"max_blob_bytes"`
	MetricsAddr  string `toml:"metrics_addr"`
	// ForecastHorizon such as "14d" or "72h".
	ForecastHorizon string `toml:"forecast_horizon"`
	TLSCert         string `toml:"tls_cert"`
	TLSKey          string `toml:"tls_key"`
	// BehindTLSProxy: a proxy in front terminates TLS (Secure cookies,
	// HSTS).
	BehindTLSProxy bool           `toml:"behind_tls_proxy"`
	Limits         httpguard.File `toml:"limits"`
}

func loadNSConfig(path string) (nsFileConfig, error) {
	var c nsFileConfig
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		return c, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return c, nil
}

func newNSServeCmd(e *env) *cobra.Command {
	var data, addr, db, blobsDir, configPath, metricsAddr, horizon, tlsCert, tlsKey string
	var behindProxy bool
	cmd := &cobra.Command{
		Use:   "serve --data DIR --addr HOST:PORT [--db DSN] [--blobs DIR] [--tls-cert FILE --tls-key FILE] [--metrics-addr HOST:PORT] [--config FILE]",
		Short: "Run the Notification Server",
		Long: `Run the Notification Server until interrupted.

On the first start it creates the admin token, prints it once and writes it
to DIR/admin.token (mode 0600) for scripts.

The store is SQLite in DIR/wharf.db unless --db gives a PostgreSQL DSN
(postgres://user@host:5432/db). Package content goes to the blob folder,
DIR/blobs unless --blobs names another. Settings come from the TOML file of
--config (keys: data, addr, db, blobs, max_blob_bytes, metrics_addr,
forecast_horizon, tls_cert, tls_key, behind_tls_proxy, and a [limits]
section); flags override the file.

Capacity: every Package Server reports its volumes' space hourly; the NS
forecasts when each will fall under its reserve at the current growth
(wharf server show, the Resource Manager) and raises an alert when that is
within --forecast-horizon (default 14d).

TLS: with --tls-cert and --tls-key (PEM) the NS serves HTTPS; give Package
Servers and clients the authority that signed it with --ca FILE when it is
not a public one. Behind a proxy that terminates TLS, --behind-tls-proxy
says so. Either way the console's cookies are Secure and every answer
carries Strict-Transport-Security.

Slow clients: a request header must arrive within 10 s, a body within 30 s
plus the time its bytes take at 64 KiB/s, an idle connection closes after
2 minutes, and past 4096 connections still sending (or idle) the oldest is
closed. The [limits] section changes them: header_timeout, body_timeout,
idle_timeout ("10s"), max_pending.

Operations: GET /healthz (liveness) and /readyz (the database answers; 503
while stopping) need no token; GET /metrics (Prometheus) takes the admin
token on --addr, and none on the optional --metrics-addr listener, which
serves the three alone (bind it where only monitoring reaches). Started by
systemd with Type=notify, it tells systemd when it serves (READY=1).

Replicas: several 'wharf ns serve' on one PostgreSQL database (--db) and
one shared blob folder (--blobs, on a shared file system), behind any HTTP
load balancer, act as one NS: a change made through one wakes the long
polls held by the others (LISTEN/NOTIFY), console sessions and login limits
live in the database. Only the first start on a database creates the admin
token; give the others its admin.token file if scripts there need it.`,
		Example: `  wharf ns serve --data /var/lib/wharf --addr 0.0.0.0:8080
  wharf ns serve --data /var/lib/wharf --addr :8080 --db postgres://wharf@db/wharf
  wharf ns serve --data /var/lib/wharf --addr :8080 --db postgres://wharf@db/wharf --blobs /mnt/shared/wharf-blobs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := ns.Config{}
			if configPath != "" {
				fc, err := loadNSConfig(configPath)
				if err != nil {
					return err
				}
				cfg.DataDir, cfg.DB, cfg.BlobsDir, cfg.MaxBlobBytes = fc.Data, fc.DB, fc.Blobs, fc.MaxBlobBytes
				cfg.TLSCert, cfg.TLSKey, cfg.BehindTLSProxy = fc.TLSCert, fc.TLSKey, fc.BehindTLSProxy
				if err := fc.Limits.Apply(&cfg.Limits); err != nil {
					return fmt.Errorf("config %s: %w", configPath, err)
				}
				if !cmd.Flags().Changed("addr") && fc.Addr != "" {
					addr = fc.Addr
				}
				if !cmd.Flags().Changed("metrics-addr") && fc.MetricsAddr != "" {
					metricsAddr = fc.MetricsAddr
				}
				if !cmd.Flags().Changed("forecast-horizon") && fc.ForecastHorizon != "" {
					horizon = fc.ForecastHorizon
				}
			}
			if cmd.Flags().Changed("data") || cfg.DataDir == "" {
				cfg.DataDir = data
			}
			if cmd.Flags().Changed("db") {
				cfg.DB = db
			}
			if cmd.Flags().Changed("blobs") {
				cfg.BlobsDir = blobsDir
			}
			if cmd.Flags().Changed("tls-cert") {
				cfg.TLSCert = tlsCert
			}
			if cmd.Flags().Changed("tls-key") {
				cfg.TLSKey = tlsKey
			}
			if cmd.Flags().Changed("behind-tls-proxy") {
				cfg.BehindTLSProxy = behindProxy
			}
			if addr == "" {
				return usageError{errors.New("no address: set --addr HOST:PORT")}
			}
			if horizon != "" {
				d, err := parseDays(horizon)
				if err != nil {
					return usageError{fmt.Errorf("--forecast-horizon: %v", err)}
				}
				cfg.ForecastHorizon = d
			}
			log := e.logger()
			srv, err := ns.Open(e.ctx, cfg, log)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				srv.Close()
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			var opsLn net.Listener
			if metricsAddr != "" {
				if opsLn, err = net.Listen("tcp", metricsAddr); err != nil {
					ln.Close()
					srv.Close()
					return fmt.Errorf("listen on %s (--metrics-addr): %w", metricsAddr, err)
				}
			}
			if srv.NewAdminToken != "" {
				printAdminToken(e.stdio.Out, srv.NewAdminToken, cfg.DataDir)
			}
			fmt.Fprintf(e.stdio.Out, "Notification Server listening on %s://%s\n", srv.Scheme(), ln.Addr())
			return serveWithOps(e, log, func(ctx context.Context) error { return srv.Serve(ctx, ln) },
				opsLn, srv.ServeOps, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "data directory (database, blobs, admin.token)")
	f.StringVar(&addr, "addr", "", "listen address HOST:PORT")
	f.StringVar(&db, "db", "", "PostgreSQL DSN; empty for SQLite in the data directory")
	f.StringVar(&blobsDir, "blobs", "", "blob folder, shared by every replica (default DATA/blobs)")
	f.StringVar(&configPath, "config", "", "TOML configuration file")
	f.StringVar(&metricsAddr, "metrics-addr", "", "also serve /metrics, /healthz and /readyz, without a token, on HOST:PORT")
	f.StringVar(&horizon, "forecast-horizon", "14d", "alert when a Package Server's volume is forecast to reach its reserve sooner (such as 14d or 72h)")
	f.StringVar(&tlsCert, "tls-cert", "", "certificate file (PEM): serve HTTPS")
	f.StringVar(&tlsKey, "tls-key", "", "private key file (PEM) of --tls-cert")
	f.BoolVar(&behindProxy, "behind-tls-proxy", false, "a proxy in front terminates TLS: Secure cookies and HSTS")
	return cmd
}

// parseDays reads a duration such as 72h, or a number of days such as 14d.
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days <= 0 || days > 3650 {
			return 0, fmt.Errorf("%q: want days such as 14d, or a duration such as 72h", s)
		}
		return time.Duration(days * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want days such as 14d, or a duration such as 72h", s)
	}
	return d, nil
}

func printAdminToken(w io.Writer, token, dataDir string) {
	fmt.Fprintf(w, "Admin token (shown once; also in %s, mode 0600):\n  %s\n",
		dataDir+string(os.PathSeparator)+ns.AdminTokenFile, token)
}

func newNSEnrollTokenCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "enroll-token",
		Short: "Mint a one-time enrollment token for a Package Server",
		Long: `Mint a one-time enrollment token, valid for 24 hours. Give it to
'wharf ps serve --enroll TOKEN' on the Package Server's first start.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			tok, err := c.CreateEnrollToken(e.ctx)
			if err != nil {
				return err
			}
			return e.print(tok, func(w io.Writer) {
				fmt.Fprintln(w, tok.Token)
			})
		},
	}
}
