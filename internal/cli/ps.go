package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/ps"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/wharf"
)

func init() { register(newPSCmd) }

func newPSCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "ps", Short: "Run and inspect a Package Server"}
	cmd.AddCommand(newPSServeCmd(e), newPSStatusCmd(e), newPSUpdateConfigCmd(e))
	for _, add := range psCommands {
		cmd.AddCommand(add(e))
	}
	return cmd
}

// psCommands are more `wharf ps` subcommands, added by other files in
// their init functions.
var psCommands []func(*env) *cobra.Command

func newPSServeCmd(e *env) *cobra.Command {
	var (
		enroll, installDir, addr, name, configPath, url, tlsCert, tlsKey, service, metricsAddr string
	)
	cmd := &cobra.Command{
		Use:   "serve --ns URL --enroll TOKEN --install-dir DIR --addr HOST:PORT [--name NAME] [--config FILE]",
		Short: "Run a Package Server",
		Long: `Run a Package Server until interrupted: download the packages the
Notification Server assigns to it, keep them under the install dir, and serve
them to clients at /packages/{package id}/{path} over HTTP, or HTTPS with
--tls-cert and --tls-key.

The first start enrolls with the one-time token of --enroll (from
` + "`wharf ns enroll-token`" + `) under --name (default: the host name) and keeps the
credential in DIR/credential.json (mode 0600); later starts reuse it, so
--enroll is only needed once. Clients are told to download from --url
(default http(s)://HOST:PORT of --addr): the Package Server reports it on
every poll, so after a restart on another port or with TLS the NS hands out
the new URL at once. An NS whose certificate a private authority signed is
trusted with --ca FILE (PEM; also the ca key of the file, or WHARF_CA).
When the NS asks (wharf server rotate-credential), the Package Server picks
a new credential and keeps it in credential.json before sending it.

Settings may come from the TOML file of --config; flags override it. On
Windows the registry values of HKLM\SOFTWARE\Wharf\Package Server
"Package Storage Relocation Maximum Attempts" and "Package Storage Relocation
Interval (min)" (REG_DWORD) set relocation.max_attempts and
relocation.interval below the file: defaults < registry < file < flags.

  ns = "https://ns:8443"       # also: name, addr, url, install_dir, tls_cert, tls_key, ca, metrics_addr
  [storage]
  reserve = "5%"               # or a size: "2GiB"
  volumes = ["/data1"]         # the only volumes rotation may use (Linux)
  [relocation]
  max_attempts = 3
  interval = "15m"
  bandwidth = "200MB/s"

The local admin endpoint is DIR/admin.sock: see ` + "`wharf ps status`" + ` and
` + "`wharf ps update-config`" + `; it serves the Prometheus metrics at /metrics
too. --metrics-addr serves them, /healthz and /readyz over TCP without a
token (bind it where only monitoring reaches); the package port answers
/healthz and /readyz as well. Started by systemd with Type=notify, the
Package Server tells systemd when it serves (READY=1).`,
		Example: `  wharf ps serve --ns http://ns:8080 --enroll 7f3c... --install-dir /opt/wharf --addr :8081
  wharf ps serve --install-dir /opt/wharf --addr :8081    # later starts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := ps.DefaultConfig()
			fromRegistry, err := cfg.LoadRegistry() // Windows: defaults < registry < file < flags
			if err != nil {
				return err
			}
			if configPath != "" {
				if err := cfg.LoadFile(configPath); err != nil {
					return err
				}
			}
			if e.nsURL() != "" {
				cfg.NS = e.nsURL()
			}
			if e.caFile() != "" {
				cfg.CAFile = e.caFile() // --ca / WHARF_CA: the NS's authority
			}
			fl := cmd.Flags()
			for flag, dst := range map[string]*string{
				"install-dir": &cfg.InstallDir, "addr": &cfg.Addr, "name": &cfg.Name, "url": &cfg.URL,
				"tls-cert": &cfg.TLSCert, "tls-key": &cfg.TLSKey, "enroll": &cfg.EnrollToken,
				"metrics-addr": &cfg.MetricsAddr,
			} {
				if fl.Changed(flag) {
					v, _ := fl.GetString(flag)
					*dst = v
				}
			}
			if service != "" {
				return servePSService(service, cfg, fromRegistry)
			}
			log := e.logger()
			logRegistry(log, fromRegistry, cfg)
			d, err := ps.New(cfg, log)
			if err != nil {
				return usageError{err}
			}
			go func() {
				select {
				case <-d.Ready():
					fmt.Fprintf(e.stdio.Out, "Package Server %s serving on %s\n", d.Name(), d.URL())
					if a := d.MetricsAddr(); a != "" {
						fmt.Fprintf(e.stdio.Out, "Metrics and health on http://%s/metrics\n", a)
					}
				case <-e.ctx.Done():
				}
			}()
			return serveWithOps(e, log, d.Serve, nil, nil, d.Ready())
		},
	}
	f := cmd.Flags()
	f.StringVar(&enroll, "enroll", "", "one-time enrollment token (first start only)")
	f.StringVar(&installDir, "install-dir", ps.DefaultInstallDir(), "install dir: credential, state, admin socket, Package Delivery")
	f.StringVar(&addr, "addr", ps.DefaultAddr, "listen address HOST:PORT for package downloads")
	f.StringVar(&name, "name", "", "server name to enroll under (default: the host name)")
	f.StringVar(&configPath, "config", "", "TOML configuration file")
	f.StringVar(&url, "url", "", "base URL clients download from (default from --addr)")
	f.StringVar(&tlsCert, "tls-cert", "", "certificate file (PEM): serve HTTPS")
	f.StringVar(&tlsKey, "tls-key", "", "private key file (PEM) of --tls-cert")
	f.StringVar(&metricsAddr, "metrics-addr", "", "also serve /metrics, /healthz and /readyz, without a token, on HOST:PORT")
	f.StringVar(&service, "service", "", "run as the Windows service of this name (set by `wharf ps service install`)")
	_ = f.MarkHidden("service")
	return cmd
}

func newPSStatusCmd(e *env) *cobra.Command {
	var installDir string
	var packages int
	cmd := &cobra.Command{
		Use:   "status [--install-dir DIR] [--json]",
		Short: "Show the local Package Server's storage path and packages",
		Long: `Ask the Package Server running on this machine (through DIR/admin.sock)
for its name, Notification Server, storage path, the store roots holding
packages, the relocation state (last or running attempt, per-package states,
progress, retry counters), the packages counted by state, and the first
packages by name with their state (--packages N lists N; the status of a
store of any size stays small).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			st, err := admin.NewClient(admin.SocketPath(installDir)).StatusWith(e.ctx, packages)
			if err != nil {
				return err
			}
			return e.print(st, func(w io.Writer) { printPSStatus(w, st) })
		},
	}
	cmd.Flags().StringVar(&installDir, "install-dir", ps.DefaultInstallDir(), "install dir of the Package Server")
	cmd.Flags().IntVar(&packages, "packages", admin.DefaultPackages, "list at most this many packages (in name order; the counts are of all)")
	return cmd
}

func printPSStatus(w io.Writer, st admin.Status) {
	fmt.Fprintf(w, "Name:          %s\n", st.Name)
	fmt.Fprintf(w, "NS:            %s\n", st.NSURL)
	fmt.Fprintf(w, "URL:           %s\n", st.URL)
	fmt.Fprintf(w, "Storage path:  %s\n", st.StoragePath)
	if st.Primary != "" && st.Primary != st.StoragePath {
		fmt.Fprintf(w, "New downloads: %s\n", st.Primary)
	}
	for i, l := range st.Locations {
		label := "Locations:    "
		if i > 0 {
			label = "              "
		}
		extra := ""
		if l.Custom {
			extra = ", custom location"
		}
		if l.Linked > 0 {
			extra += fmt.Sprintf(", %d behind links", l.Linked)
		}
		fmt.Fprintf(w, "%s %s (%d packages, %s%s)\n", label, l.Root, l.Packages, wharf.FormatSize(l.Bytes), extra)
	}
	if st.Relocation != nil {
		printRelocationStatus(w, st.Relocation)
	}
	printLinkAudit(w, "Links:         ", st.Links)
	var parts []string
	for _, s := range []string{"ready", "downloading", "failed", "unavailable"} {
		if st.States[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", st.States[s], s))
		}
	}
	fmt.Fprintf(w, "Packages:      %d", st.PackageCount)
	if len(parts) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	if len(st.Packages) == 0 {
		return
	}
	fmt.Fprintln(w)
	if st.PackagesOmitted > 0 {
		fmt.Fprintf(w, "The first %d packages by name (--packages N for more):\n", len(st.Packages))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tVERSION\tSTATE\tSIZE\tPATH")
	for _, p := range st.Packages {
		state := p.State
		if p.Reason != "" {
			state += ": " + p.Reason
		}
		path := p.Path
		if p.Link != "" {
			path = p.Link + " -> " + p.Path
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Version, state, wharf.FormatSize(p.Size), path)
	}
	tw.Flush()
}

func newPSUpdateConfigCmd(e *env) *cobra.Command {
	var installDir string
	cmd := &cobra.Command{
		Use:   "update-config [--install-dir DIR]",
		Short: "Make the local Package Server poll the Notification Server now",
		Long: `Make the Package Server running on this machine ask the Notification
Server for its configuration now, instead of at the end of the current poll,
and apply it: new packages start downloading, unassigned ones are removed,
failed ones are tried again. Returns once the configuration was applied.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := admin.NewClient(admin.SocketPath(installDir)).UpdateConfig(e.ctx); err != nil {
				return fmt.Errorf("update config: %w", err)
			}
			return e.print(map[string]bool{"updated": true}, func(w io.Writer) {
				fmt.Fprintln(w, "Configuration polled and applied.")
			})
		},
	}
	cmd.Flags().StringVar(&installDir, "install-dir", ps.DefaultInstallDir(), "install dir of the Package Server")
	return cmd
}
