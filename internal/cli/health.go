package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/wharf-project/wharf/internal/api"
)

// linkKinds are the link audit's problem kinds, the gravest first.
var linkKinds = []string{api.LinkTargetUnavailable, api.LinkTargetMissing, api.LinkMissing, api.LinkStale}

// linkProblemsShown bounds the problems a text output lists.
const linkProblemsShown = 20

// printLinkAudit prints a link audit: how many packages are behind links,
// and the problems found, the first linkProblemsShown of them.
func printLinkAudit(w io.Writer, label string, au *api.LinkAudit) {
	if au == nil {
		fmt.Fprintf(w, "%snot audited yet\n", label)
		return
	}
	n := len(au.Problems) + au.ProblemsOmitted
	when := au.At.Local().Format("2006-01-02 15:04:05")
	if n == 0 {
		fmt.Fprintf(w, "%s%d packages behind links, all sound (audited %s)\n", label, au.Links, when)
		return
	}
	var parts []string
	for _, k := range linkKinds {
		if c := au.Counts[k]; c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, k))
		}
	}
	fmt.Fprintf(w, "%s%d packages behind links, %d with problems: %s (audited %s)\n", label, au.Links, n, strings.Join(parts, ", "), when)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, p := range au.Problems {
		if i == linkProblemsShown {
			fmt.Fprintf(tw, "    ... and %d more (--json lists %d)\n", n-i, len(au.Problems))
			break
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", p.Kind, orDash(p.Name), orDash(p.Version), p.PackageID, p.Detail)
	}
	tw.Flush()
	if au.Counts[api.LinkMissing]+au.Counts[api.LinkStale] > 0 {
		fmt.Fprintln(w, "    A retry relocation moves or links again the packages whose link is missing or stale.")
	}
	if au.Counts[api.LinkTargetUnavailable] > 0 {
		fmt.Fprintln(w, "    Packages on an unavailable volume are not served: mount it back, then retry the relocation.")
	}
}

// printCapacity prints the NS's forecast of each volume of a server.
func printCapacity(w io.Writer, label string, h *api.ServerHealth) {
	if h == nil || len(h.Capacity) == 0 {
		fmt.Fprintf(w, "%sno volume reported yet\n", label)
		return
	}
	fmt.Fprintf(w, "%s(reported %s)\n", label, h.ReportedAt.Local().Format("2006-01-02 15:04:05"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VOLUME\tFREE\tRESERVE\tSIZE\tGROWTH\tFORECAST")
	for _, f := range h.Capacity {
		fmt.Fprintf(tw, "  %s\t%d MiB\t%d MiB\t%d MiB\t%s\t%s\n", f.Volume, f.FreeMB, f.ReserveMB, f.TotalMB, growthText(f), forecastText(f))
	}
	tw.Flush()
}

func growthText(f api.VolumeForecast) string {
	if f.State == api.ForecastUnknown {
		return "-"
	}
	return fmt.Sprintf("%+.0f MiB/day", f.GrowthMBPerDay)
}

// forecastText says when a volume falls under its reserve, in words.
func forecastText(f api.VolumeForecast) string {
	mark := ""
	if f.Alert {
		mark = "ALERT: "
	}
	switch f.State {
	case api.ForecastFilling:
		return fmt.Sprintf("%sunder the reserve in %.1f days (%s), from %d samples since %s", mark, f.DaysLeft,
			f.FullAt.Local().Format("2006-01-02"), f.Samples, f.Since.Local().Format("2006-01-02"))
	case api.ForecastUnderReserve:
		return mark + "under the reserve now"
	case api.ForecastSteady:
		return fmt.Sprintf("not filling (%d samples since %s)", f.Samples, f.Since.Local().Format("2006-01-02"))
	}
	return "unknown: " + f.Reason
}
