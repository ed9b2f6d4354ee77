package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/ps"
	"github.com/wharf-project/wharf/internal/ps/regsettings"
	"github.com/wharf-project/wharf/internal/ps/winsvc"
)

func init() { psCommands = append(psCommands, newPSServiceCmd) }

// serviceLogName is the service's log file, in the install dir.
const serviceLogName = "wharf-ps.log"

func newPSServiceCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service install|uninstall|start|stop|status [--service-name NAME]",
		Short: "Run the Package Server as a Windows service",
		Long: `Install, remove, start and stop the Package Server as a Windows service, so
it runs unattended: started at boot, restarted by the service control manager
when it fails (after 10 s, 30 s, then every minute), stopped cleanly on a
service stop or at shutdown. It logs to <install dir>\` + serviceLogName + ` (JSON lines,
rotated at 10 MiB) and, from warnings up and its starts and stops, to the
Application event log under the service's name.

Enroll first, in a console: ` + "`wharf ps serve --enroll TOKEN --install-dir DIR ...`" + `
until it serves, then Ctrl+C; then install the service with the same
--install-dir. The service runs ` + "`wharf ps serve`" + ` with the flags given to
install.

Needs an administrator. Windows only.`,
		Example: `  wharf ps service install --install-dir "D:\Wharf" --config "D:\Wharf\ps.toml" --addr :8081
  wharf ps service start
  wharf ps service stop
  wharf ps service uninstall`,
	}
	cmd.AddCommand(newPSServiceInstallCmd(e))
	for _, c := range []struct {
		use, short, done string
		run              func(string) error
	}{
		{"uninstall", "Stop and remove the service and its event source", "removed", winsvc.Uninstall},
		{"start", "Start the service and wait until it runs", "running", winsvc.Start},
		{"stop", "Stop the service and wait until it has stopped", "stopped", winsvc.Stop},
	} {
		var name string
		sub := &cobra.Command{
			Use:   c.use + " [--service-name NAME]",
			Short: c.short,
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				if err := c.run(name); err != nil {
					return err
				}
				return e.print(map[string]string{"service": name, "state": c.done}, func(w io.Writer) {
					fmt.Fprintf(w, "Service %s %s.\n", name, c.done)
				})
			},
		}
		sub.Flags().StringVar(&name, "service-name", winsvc.DefaultName, "the service's name")
		cmd.AddCommand(sub)
	}
	var name string
	status := &cobra.Command{
		Use:   "status [--service-name NAME]",
		Short: "Print the service's state",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			st, err := winsvc.State(name)
			if err != nil {
				return err
			}
			return e.print(map[string]string{"service": name, "state": st}, func(w io.Writer) {
				fmt.Fprintf(w, "Service %s is %s.\n", name, st)
			})
		},
	}
	status.Flags().StringVar(&name, "service-name", winsvc.DefaultName, "the service's name")
	cmd.AddCommand(status)
	return cmd
}

func newPSServiceInstallCmd(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "install [--service-name NAME] [--install-dir DIR] [--config FILE] [--addr HOST:PORT] [--name NAME] [--url URL] [--tls-cert FILE --tls-key FILE]",
		Short: "Install the service, which runs `wharf ps serve` with these flags",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find wharf.exe: %w", err)
			}
			if exe, err = filepath.Abs(exe); err != nil {
				return fmt.Errorf("find wharf.exe: %w", err)
			}
			args, err := serviceServeArgs(cmd, name, e.nsURL(), e.caFile())
			if err != nil {
				return usageError{err}
			}
			warning, err := winsvc.Install(winsvc.Config{Name: name, Exe: exe, Args: args})
			if err != nil {
				return err
			}
			if warning != "" {
				fmt.Fprintf(e.stdio.Err, "wharf: warning: %s\n", warning)
			}
			line := exe + " " + strings.Join(args, " ")
			return e.print(map[string]string{"service": name, "state": "installed", "command": line, "warning": warning}, func(w io.Writer) {
				restart := "restarted on failure"
				if warning != "" {
					restart = "NOT restarted on failure"
				}
				fmt.Fprintf(w, "Service %s installed (automatic start, %s): %s\n", name, restart, line)
				fmt.Fprintf(w, "Start it with: wharf ps service start --service-name %s\n", name)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "service-name", winsvc.DefaultName, "the service's name")
	f.String("install-dir", ps.DefaultInstallDir(), "install dir: credential, state, admin socket, Package Delivery, the log")
	f.String("config", "", "TOML configuration file")
	f.String("addr", ps.DefaultAddr, "listen address HOST:PORT for package downloads")
	f.String("name", "", "server name (as enrolled)")
	f.String("url", "", "base URL clients download from")
	f.String("tls-cert", "", "certificate file (PEM): serve HTTPS")
	f.String("tls-key", "", "private key file (PEM) of --tls-cert")
	return cmd
}

// serviceServeArgs are the arguments of `wharf ps serve` for the service:
// --service NAME, the install dir and config file as absolute paths, the
// other serve flags that were given, and the NS URL when known (a service
// does not see the installer's WHARF_NS).
func serviceServeArgs(cmd *cobra.Command, name, ns, ca string) ([]string, error) {
	fl := cmd.Flags()
	installDir, _ := fl.GetString("install-dir")
	abs, err := filepath.Abs(installDir)
	if err != nil {
		return nil, fmt.Errorf("install dir %q: %w", installDir, err)
	}
	args := []string{"ps", "serve", "--service", name, "--install-dir", abs}
	if c, _ := fl.GetString("config"); c != "" {
		if c, err = filepath.Abs(c); err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		args = append(args, "--config", c)
	}
	for _, flag := range []string{"addr", "name", "url", "tls-cert", "tls-key"} {
		if fl.Changed(flag) {
			v, _ := fl.GetString(flag)
			args = append(args, "--"+flag, v)
		}
	}
	if ns != "" {
		args = append(args, "--ns", ns)
	}
	if ca != "" { // --ca or WHARF_CA: the service has no environment of the console's
		if ca, err = filepath.Abs(ca); err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		args = append(args, "--ca", ca)
	}
	return args, nil
}

// servePSService runs the Package Server of cfg as the Windows service
// name, logging to the install dir's log file and the event log.
func servePSService(name string, cfg ps.Config, fromRegistry regsettings.Settings) error {
	if err := os.MkdirAll(cfg.InstallDir, 0o755); err != nil {
		return fmt.Errorf("install dir: %w", err)
	}
	return winsvc.Run(name, filepath.Join(cfg.InstallDir, serviceLogName), slog.LevelInfo,
		func(ctx context.Context, log *slog.Logger, ready func()) error {
			logRegistry(log, fromRegistry, cfg)
			d, err := ps.New(cfg, log)
			if err != nil {
				return err
			}
			go func() {
				select {
				case <-d.Ready():
					log.Info("Package Server serving", "name", d.Name(), "url", d.URL())
					ready()
				case <-ctx.Done():
				}
			}()
			return d.Serve(ctx)
		})
}

// logRegistry says which relocation settings came from the Windows
// registry, and what is in effect after the config file and the flags.
func logRegistry(log *slog.Logger, s regsettings.Settings, cfg ps.Config) {
	if s.Empty() {
		return
	}
	log.Info("relocation settings read from the registry (the config file and flags take precedence)",
		"key", `HKLM\`+regsettings.Key, "values", s.String(),
		"max_attempts", cfg.Relocation.MaxAttempts, "interval", cfg.Relocation.Interval.String())
}
