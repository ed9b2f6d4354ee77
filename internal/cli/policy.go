package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/wharf"
)

func init() { register(newPolicyCmd) }

func newPolicyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Show and change the Package Server Settings and Global Site Server Settings",
		Long: `Two global policies apply to every Package Server:

  Package Server Settings      primary file storage location (Linux, Windows),
                               allow usage of all fixed drives, relocation mode
  Global Site Server Settings  config poll interval, download concurrency,
                               download bandwidth limit

A server may override any field with --server; fields it does not
override inherit the global value. 'wharf policy reset --server NAME'
removes its overrides.`,
	}
	cmd.AddCommand(newPolicyGetCmd(e), newPolicySetCmd(e), newPolicyResetCmd(e))
	return cmd
}

// globalPolicies is the --json output of `policy get` without --server.
type globalPolicies struct {
	PackageServer api.PackageServerPolicy `json:"package_server"`
	SiteServer    api.SiteServerPolicy    `json:"site_server"`
}

func newPolicyGetCmd(e *env) *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "get [--server NAME]",
		Short: "Print the global policies, or the effective policy of a server",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if server != "" {
				eff, err := c.EffectivePolicy(e.ctx, server)
				if err != nil {
					return err
				}
				return e.print(eff, func(w io.Writer) { printEffective(w, eff) })
			}
			return printGlobal(e, c)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "show the effective policy of this Package Server")
	return cmd
}

// printGlobal fetches and prints both global policies.
func printGlobal(e *env, c *apiclient.Client) error {
	var g globalPolicies
	var err error
	if g.PackageServer, err = c.PackageServerPolicy(e.ctx, ""); err != nil {
		return err
	}
	if g.SiteServer, err = c.SiteServerPolicy(e.ctx, ""); err != nil {
		return err
	}
	return e.print(g, func(w io.Writer) {
		fmt.Fprintf(w, "Package Server Settings (version %d)\n", g.PackageServer.Version)
		printPackageServer(w, g.PackageServer.Settings, nil)
		fmt.Fprintf(w, "Global Site Server Settings (version %d)\n", g.SiteServer.Version)
		printSiteServer(w, g.SiteServer.Settings, nil)
	})
}

func printEffective(w io.Writer, eff api.EffectivePolicy) {
	over := map[string]bool{}
	for _, f := range eff.Overridden {
		over[f] = true
	}
	fmt.Fprintf(w, "Effective policy of %s (%s)\n", eff.Server, eff.OS)
	fmt.Fprintln(w, "Package Server Settings")
	printPackageServer(w, eff.PackageServer, over)
	fmt.Fprintln(w, "Global Site Server Settings")
	printSiteServer(w, eff.SiteServer, over)
}

func mark(over map[string]bool, field string) string {
	if over[field] {
		return "  (override)"
	}
	return ""
}

func printPackageServer(w io.Writer, s api.PackageServerSettings, over map[string]bool) {
	fmt.Fprintf(w, "  Linux location:        %s%s\n", deref(s.LinuxLocation), mark(over, "linux_location"))
	fmt.Fprintf(w, "  Windows location:      %s%s\n", deref(s.WindowsLocation), mark(over, "windows_location"))
	fmt.Fprintf(w, "  All fixed drives:      %s%s\n", deref(s.AllFixedDrives), mark(over, "all_fixed_drives"))
	fmt.Fprintf(w, "  Relocation mode:       %s%s\n", deref(s.RelocationMode), mark(over, "relocation_mode"))
}

func printSiteServer(w io.Writer, s api.SiteServerSettings, over map[string]bool) {
	poll := "-"
	if s.PollIntervalSeconds != nil {
		poll = (time.Duration(*s.PollIntervalSeconds) * time.Second).String()
	}
	bw := "-"
	if s.DownloadBandwidth != nil {
		bw = wharf.FormatRate(*s.DownloadBandwidth)
	}
	fmt.Fprintf(w, "  Poll interval:         %s%s\n", poll, mark(over, "poll_interval_seconds"))
	fmt.Fprintf(w, "  Download concurrency:  %s%s\n", deref(s.DownloadConcurrency), mark(over, "download_concurrency"))
	fmt.Fprintf(w, "  Download bandwidth:    %s%s\n", bw, mark(over, "download_bandwidth"))
}

func deref[T any](p *T) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func newPolicySetCmd(e *env) *cobra.Command {
	var (
		server                                  string
		linuxLoc, windowsLoc, allFixed, mode    string
		pollInterval, concurrency, bandwidthArg string
	)
	cmd := &cobra.Command{
		Use:   "set [--server NAME] [--linux-location default|PATH] [--windows-location default|PATH] [--all-fixed-drives true|false] [--relocation-mode online|exclusive] [--poll-interval DURATION] [--download-concurrency N] [--download-bandwidth RATE]",
		Short: "Change policy fields, globally or as a server's override",
		Long: `Change the fields given and leave the others as they are. With --server
the fields become that server's override; without it they change the global
policy. A changed storage location makes the Package Servers it applies to
relocate their packages there.

--download-bandwidth takes a rate such as 50MB/s or 1GiB/s, or 0 for no
limit; --poll-interval a duration such as 30s.`,
		Example: `  wharf policy set --linux-location /srv/wharf --windows-location 'E:\Wharf\PS-packages'
  wharf policy set --server ps-paris --all-fixed-drives true --download-bandwidth 20MB/s
  wharf policy set --linux-location default`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pss api.PackageServerSettings
			var sss api.SiteServerSettings
			changed := cmd.Flags().Changed
			if changed("linux-location") {
				pss.LinuxLocation = &linuxLoc
			}
			if changed("windows-location") {
				pss.WindowsLocation = &windowsLoc
			}
			if changed("relocation-mode") {
				pss.RelocationMode = &mode
			}
			if changed("all-fixed-drives") {
				b, err := strconv.ParseBool(allFixed)
				if err != nil {
					return usageError{fmt.Errorf("--all-fixed-drives %q: want true or false", allFixed)}
				}
				pss.AllFixedDrives = &b
			}
			if changed("poll-interval") {
				d, err := time.ParseDuration(pollInterval)
				if err != nil || d%time.Second != 0 {
					return usageError{fmt.Errorf("--poll-interval %q: want whole seconds such as 30s", pollInterval)}
				}
				n := int(d / time.Second)
				sss.PollIntervalSeconds = &n
			}
			if changed("download-concurrency") {
				n, err := strconv.Atoi(concurrency)
				if err != nil {
					return usageError{fmt.Errorf("--download-concurrency %q: want a whole number", concurrency)}
				}
				sss.DownloadConcurrency = &n
			}
			if changed("download-bandwidth") {
				n, err := parseBandwidth(bandwidthArg)
				if err != nil {
					return usageError{err}
				}
				sss.DownloadBandwidth = &n
			}
			psSet, ssSet := pss != (api.PackageServerSettings{}), sss != (api.SiteServerSettings{})
			if !psSet && !ssSet {
				return usageError{errors.New("nothing to set: give at least one field flag (see --help)")}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if psSet {
				if _, err := c.SetPackageServerPolicy(e.ctx, server, pss); err != nil {
					return err
				}
			}
			if ssSet {
				if _, err := c.SetSiteServerPolicy(e.ctx, server, sss); err != nil {
					return err
				}
			}
			if server != "" {
				eff, err := c.EffectivePolicy(e.ctx, server)
				if err != nil {
					return err
				}
				return e.print(eff, func(w io.Writer) { printEffective(w, eff) })
			}
			return printGlobal(e, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "change this Package Server's override instead of the global policy")
	f.StringVar(&linuxLoc, "linux-location", "", "primary storage location of Linux servers: default or an absolute path")
	f.StringVar(&windowsLoc, "windows-location", "", `primary storage location of Windows servers: default or a path such as E:\Wharf`)
	f.StringVar(&allFixed, "all-fixed-drives", "", "allow usage of all fixed drives: true or false")
	f.StringVar(&mode, "relocation-mode", "", "online (keep serving) or exclusive")
	f.StringVar(&pollInterval, "poll-interval", "", "config poll interval, e.g. 30s")
	f.StringVar(&concurrency, "download-concurrency", "", "concurrent downloads per Package Server")
	f.StringVar(&bandwidthArg, "download-bandwidth", "", "download rate limit, e.g. 50MB/s; 0 for none")
	return cmd
}

// parseBandwidth reads "0", "unlimited" or a rate such as 50MB/s.
func parseBandwidth(s string) (int64, error) {
	n, err := wharf.ParseBandwidth(s)
	if err != nil {
		return 0, fmt.Errorf("--download-bandwidth: %v", err)
	}
	return n, nil
}

func newPolicyResetCmd(e *env) *cobra.Command {
	var server, kind string
	cmd := &cobra.Command{
		Use:   "reset --server NAME",
		Short: "Remove a server's overrides; it returns to the global policies",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if server == "" {
				return usageError{errors.New("--server is required: the global policies cannot be reset")}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.ResetPolicy(e.ctx, server, kind); err != nil {
				return err
			}
			eff, err := c.EffectivePolicy(e.ctx, server)
			if err != nil {
				return err
			}
			return e.print(eff, func(w io.Writer) { printEffective(w, eff) })
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the Package Server")
	cmd.Flags().StringVar(&kind, "kind", "", "only this policy: package-server or site-server (default both)")
	return cmd
}
