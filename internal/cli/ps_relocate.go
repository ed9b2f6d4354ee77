package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/location"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/wharf"
)

func init() {
	psCommands = append(psCommands, newPSRetryRelocationCmd, newPSRelocateCmd)
}

func newPSRetryRelocationCmd(e *env) *cobra.Command {
	var installDir string
	cmd := &cobra.Command{
		Use:   "retry-relocation [--install-dir DIR]",
		Short: "Retry the local Package Server's relocation now (a manual retry)",
		Long: `Ask the Package Server running on this machine (through DIR/admin.sock)
to make a relocation attempt now: toward the storage location of its policy,
touching only the packages still behind a link when the store is there
already. A manual retry does not count towards relocation.max_attempts.
It runs as soon as no other attempt does; follow it with ` + "`wharf ps status`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := admin.NewClient(admin.SocketPath(installDir)).RetryRelocation(e.ctx); err != nil {
				return fmt.Errorf("retry relocation: %w", err)
			}
			return e.print(map[string]bool{"queued": true}, func(w io.Writer) {
				fmt.Fprintln(w, "Manual relocation retry queued; see `wharf ps status`.")
			})
		},
	}
	cmd.Flags().StringVar(&installDir, "install-dir", ps.DefaultInstallDir(), "install dir of the Package Server")
	return cmd
}

func newPSRelocateCmd(e *env) *cobra.Command {
	var installDir, plan string
	cmd := &cobra.Command{
		Use:   "relocate --plan PATH [--install-dir DIR] [--json]",
		Short: "Evaluate a relocation target on the local Package Server, moving nothing",
		Long: `Ask the Package Server running on this machine to evaluate PATH as the
location of its package store, as a relocation there would (SPEC §6.5): every
prerequisite with its verdict, MiB needed against MiB free on the target
volume, the longest resulting path against the limit, how many packages
would move by rename and by copy, and an estimate of the time. Nothing moves;
a relocation starts when the Package Server Settings policy names the path.

EXIT STATUS
  0 when every prerequisite passes, 1 when one fails (or on error).`,
		Example: `  wharf ps relocate --plan /data/wharf
  wharf ps relocate --plan /data/wharf --install-dir /opt/wharf --json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if plan == "" {
				return usageError{fmt.Errorf("give the target with --plan PATH")}
			}
			p, err := admin.NewClient(admin.SocketPath(installDir)).Plan(e.ctx, plan)
			if err != nil {
				return fmt.Errorf("plan relocation to %s: %w", plan, err)
			}
			if err := e.print(p, func(w io.Writer) { printRelocatePlan(w, p) }); err != nil {
				return err
			}
			if !p.OK {
				return fmt.Errorf("cannot relocate to %s: %s", p.Target, strings.Join(p.StatusFlags, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&plan, "plan", "", "the target to evaluate (required: this command only plans)")
	cmd.Flags().StringVar(&installDir, "install-dir", ps.DefaultInstallDir(), "install dir of the Package Server")
	return cmd
}

// printRelocatePlan prints a plan as `wharf ps relocate --plan` shows it.
func printRelocatePlan(w io.Writer, p *relocate.Plan) {
	verdict := "can relocate"
	if !p.OK {
		verdict = "cannot relocate: " + strings.Join(p.StatusFlags, ", ")
	}
	fmt.Fprintf(w, "Target %s: %s\n", p.Target, verdict)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range p.Prerequisites {
		mark, name := prerequisiteLine(c.Name, c.OK, c.Skipped)
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", mark, name, c.Detail)
	}
	tw.Flush()
	if p.VolumeRoot != "" {
		fmt.Fprintf(w, "Volume:       %s (%s, %d MiB)\n", p.VolumeRoot, p.FSType, p.VolumeTotalMiB)
	}
	fmt.Fprintf(w, "Space:        %d MiB needed (reserve %d MiB), %d MiB free\n", p.NeededMiB, p.ReserveBytes>>20, p.FreeMiB)
	fmt.Fprintf(w, "Longest path: %d of %d %s (%s)\n", p.LongestPathLen, p.PathLimit, p.PathUnit, p.CheckedPath)
	fmt.Fprintf(w, "Packages:     %d by rename, %d by copy (%s), %d already there, %d custom-location\n",
		p.ByRename, p.ByCopy, wharf.FormatSize(p.CopyBytes), p.AlreadyThere, p.Custom)
	fmt.Fprintf(w, "Estimate:     %s\n", p.Estimate().Round(time.Second))
}

// printRelocationStatus prints the relocation part of `wharf ps status`.
func printRelocationStatus(w io.Writer, r *location.Status) {
	state := "idle"
	if r.Running {
		state = "running (" + r.Kind + ")"
	}
	fmt.Fprintf(w, "Relocation:    %s, mode %s\n", state, r.Mode)
	if r.Target != r.StoragePath {
		fmt.Fprintf(w, "  Target:      %s\n", r.Target)
	}
	if r.Location != "" && r.Location != r.Target {
		fmt.Fprintf(w, "  Policy:      %s\n", r.Location)
	}
	if !r.LastAttempt.IsZero() {
		fmt.Fprintf(w, "  Last:        %s: %#x %s\n", r.LastAttempt.Local().Format("2006-01-02 15:04:05"),
			r.LastStatus, strings.Join(r.LastStatusFlags, ", "))
	}
	if r.Message != "" {
		fmt.Fprintf(w, "  Message:     %s\n", r.Message)
	}
	fmt.Fprintf(w, "  Retries:     %d of %d automatic", r.AttemptsDone, r.MaxAttempts)
	if !r.NextRetry.IsZero() {
		fmt.Fprintf(w, ", next at %s", r.NextRetry.Local().Format("2006-01-02 15:04:05"))
	}
	fmt.Fprintln(w)
	if r.JournalOpen > 0 {
		fmt.Fprintf(w, "  Journal:     %d entries open\n", r.JournalOpen)
	}
	ev := r.Event
	if ev == nil {
		return
	}
	if p := ev.Progress; p != nil && r.Running {
		fmt.Fprintf(w, "  Progress:    %d of %d packages, %s of %s, ETA %s\n", p.PackagesDone, p.PackagesTotal,
			wharf.FormatSize(p.BytesDone), wharf.FormatSize(p.BytesTotal), time.Duration(p.ETASeconds)*time.Second)
	}
	counts := map[string]int{}
	var notMoved []api.RelocationPackage
	for _, p := range ev.Packages {
		counts[p.State]++
		if p.State != api.RelocationMoved {
			notMoved = append(notMoved, p)
		}
	}
	if len(ev.Packages) > 0 {
		fmt.Fprintf(w, "  Packages:    %d moved, %d linked, %d failed, %d pending\n", counts[api.RelocationMoved],
			counts[api.RelocationLinked], counts[api.RelocationFailed], counts[api.RelocationPending])
	}
	if len(notMoved) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, p := range notMoved {
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", p.PackageID, p.State, p.Reason)
		}
		tw.Flush()
	}
}
