package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/api"
)

func init() { register(newAlertCmd) }

func newAlertCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "alert", Short: "List alerts and mark them read"}
	var unread bool
	ls := &cobra.Command{
		Use:   "ls [--unread]",
		Short: "List alerts, newest first",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			list, err := c.Alerts(e.ctx, unread)
			if err != nil {
				return err
			}
			return e.print(api.AlertList{Alerts: list}, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tLEVEL\tLAST SEEN\tTIMES\tREAD\tMESSAGE")
				for _, a := range list {
					read := "no"
					if !a.ReadAt.IsZero() {
						read = "yes"
					}
					seen := a.LastSeenAt
					if seen.IsZero() {
						seen = a.CreatedAt
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", a.ID, a.Level, seen.Local().Format("2006-01-02 15:04:05"),
						max(a.Count, 1), read, a.Message)
				}
				tw.Flush()
			})
		},
	}
	ls.Flags().BoolVar(&unread, "unread", false, "only alerts not marked read")
	var all bool
	read := &cobra.Command{
		Use:   "read ID | read --all",
		Short: "Mark an alert read, or every unread alert",
		Long: `Mark the alert ID read, or with --all every alert not read yet. An
alert raised again while unread is counted (TIMES in ` + "`wharf alert ls`" + `), not
repeated; once read, the next occurrence is a new alert.`,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usageError{fmt.Errorf("give an alert ID or --all, not both")}
			case !all && len(args) != 1:
				return usageError{fmt.Errorf("give one alert ID, or --all")}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if all {
				n, err := c.MarkAllAlertsRead(e.ctx)
				if err != nil {
					return err
				}
				return e.print(api.AlertsRead{Marked: n}, func(w io.Writer) { fmt.Fprintf(w, "Marked %d alerts read\n", n) })
			}
			if err := c.MarkAlertRead(e.ctx, args[0]); err != nil {
				return err
			}
			return e.print(map[string]string{"read": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "Marked alert %s read\n", args[0]) })
		},
	}
	read.Flags().BoolVar(&all, "all", false, "mark every unread alert read")
	cmd.AddCommand(ls, read)
	return cmd
}
