package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/devcluster"
)

func init() { register(newDevCmd) }

func newDevCmd(e *env) *cobra.Command {
	var data, addr string
	cmd := &cobra.Command{
		Use:   "dev [--data DIR] [--addr 127.0.0.1:8080]",
		Short: "Run a Notification Server and one Package Server in one process, for trying Wharf",
		Long: `Run the all-in-one dev cluster: an NS (SQLite) and one PS in one process,
on 127.0.0.1, through the same code as production. It enrolls the PS,
publishes a small demo package, waits until the PS has it, and prints the
NS address, the admin token, a client token (reads only: all 'wharf get'
needs) and a 'wharf get' command that works.

Everything lives under --data (default ./wharf-dev); run it again to keep
the same cluster. NOT FOR PRODUCTION: one process, loopback only.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			abs, err := filepath.Abs(data)
			if err != nil {
				return err
			}
			c, err := devcluster.Start(e.ctx, devcluster.Config{DataDir: abs, NSAddr: addr, Log: e.logger()})
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				exe = "wharf"
			}
			out := e.stdio.Out
			fmt.Fprintf(out, `
==> Wharf dev cluster is running (NOT FOR PRODUCTION)

    Notification Server:  %s   (console: log in with the admin token)
    Admin token:          %s   (administers)
    Client token:         %s   (reads: wharf get)
    Package Server:       %s (%s)
    Data:                 %s

    Try it, as a client:
      export WHARF_NS=%s WHARF_TOKEN=%s
      %s get %s --dest /tmp/wharf-demo
    and as the administrator:
      WHARF_TOKEN=%s %s server show %s

    Stop with Ctrl-C.
`, c.NSURL, c.AdminToken, c.ClientToken, c.PSName, c.PSURL, abs, c.NSURL, c.ClientToken, exe, devcluster.DemoName,
				c.AdminToken, exe, c.PSName)
			return c.Wait()
		},
	}
	cmd.Flags().StringVar(&data, "data", "wharf-dev", "data folder of the cluster")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "Notification Server address")
	return cmd
}
