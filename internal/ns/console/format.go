package console

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// funcs are the template functions; now is the console's clock.
func funcs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"mb":       formatMB,
		"bytes":    formatBytes,
		"rate":     formatRate,
		"when":     formatTime,
		"ago":      func(t time.Time) string { return ago(now(), t) },
		"hex":      func(v uint32) string { return fmt.Sprintf("0x%03x", v) },
		"words":    statusWords,
		"attempt":  attemptWords,
		"outcome":  outcome,
		"pct":      percent,
		"seconds":  formatSeconds,
		"short":    shortID,
		"plural":   plural,
		"relState": relocationState,
		"dlState":  downloadState,
		"join":     strings.Join,
		"deref":    deref,
		"prereq":   prerequisiteTitle,
		"growth":   growthText,
	}
}

// formatMB shows a size given in MiB (the unit of the Package Location
// Status) as MiB, GiB or TiB.
func formatMB(mb int64) string {
	switch {
	case mb < 0:
		return "—"
	case mb < 1024:
		return fmt.Sprintf("%d MiB", mb)
	case mb < 1024*1024:
		return trimZero(float64(mb)/1024) + " GiB"
	}
	return trimZero(float64(mb)/(1024*1024)) + " TiB"
}

// formatBytes shows a byte count in B, KiB, MiB, GiB or TiB.
func formatBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 || u == "TiB" {
			return trimZero(v) + " " + u
		}
	}
	return ""
}

// formatRate shows a bandwidth in bytes per second in the unit it was
// given in (wharf.FormatRate); 0 is no limit.
func formatRate(n int64) string { return wharf.FormatRate(n) }

func trimZero(v float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64), ".0")
}

// formatTime shows a time in UTC, to the second; the zero time is "never".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// ago shows how long before now t was: "12 s ago", "3 min ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// formatSeconds shows a duration in seconds as "1 h 5 min", "3 min 20 s".
func formatSeconds(s int64) string {
	if s <= 0 {
		return "—"
	}
	d := time.Duration(s) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", s)
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", s/60, s%60)
	}
	return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
}

func percent(done, total int64) int {
	if total <= 0 {
		return 0
	}
	return int(min(100, done*100/total))
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func deref(p any) string {
	switch v := p.(type) {
	case *string:
		if v != nil {
			return *v
		}
	case *int:
		if v != nil {
			return strconv.Itoa(*v)
		}
	case *int64:
		if v != nil {
			return strconv.FormatInt(*v, 10)
		}
	case *bool:
		if v != nil {
			return yesNo(*v)
		}
	}
	return "—"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// prerequisiteTitle names a prerequisite of SPEC §6.1, given by the status
// flag it sets when it fails, by what it checks ("Enough space").
func prerequisiteTitle(flag string) string {
	t := wharf.PrerequisiteCheck(flag)
	if t == "" {
		return t
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// statusWord is one status bit in words, with the badge class it shows in.
type statusWord struct {
	Name  string // SPEC §6.3's name
	Text  string
	Class string // ok, info, warn, error, muted
}

// bitWords says each status bit of SPEC §6.3 in words.
var bitWords = map[string]statusWord{
	"success":                {Text: "Success: every package is at the target", Class: "ok"},
	"some-not-moved":         {Text: "Warning: some packages stay behind links", Class: "warn"},
	"in-progress":            {Text: "In progress", Class: "info"},
	"not-fixed-media":        {Text: "Target is not on fixed media", Class: "error"},
	"unsupported-filesystem": {Text: "Target file system is not supported", Class: "error"},
	"insufficient-space":     {Text: "Not enough free space on the target volume", Class: "error"},
	"known-folder":           {Text: "Target is a system (known) folder", Class: "error"},
	"path-too-long":          {Text: "Resulting paths would be too long", Class: "error"},
	"invalid-target":         {Text: "Target is not a valid, empty, writable folder", Class: "error"},
	"retries-exhausted":      {Text: "Automatic retries are exhausted", Class: "error"},
	"manual":                 {Text: "Manual attempt", Class: "muted"},
	"consolidated":           {Text: "Rotated packages were consolidated", Class: "muted"},
}

// statusWords decodes status bits into words, bit 0 first.
func statusWords(bits uint32) []statusWord {
	var out []statusWord
	for _, n := range wharf.RelocationStatus(bits).Names() {
		w, ok := bitWords[n]
		if !ok {
			w = statusWord{Text: "Unknown bit " + n, Class: "muted"}
		}
		w.Name = n
		out = append(out, w)
	}
	return out
}

// attemptWords are the words of an ended attempt: its status bits, and how
// it ended when no bit says so (canceled for a new target, stopped by an
// error), so no attempt shows as a bare 0x000.
func attemptWords(ls api.LocationStatus) []statusWord {
	out := statusWords(ls.LastStatus)
	switch ls.Outcome {
	case api.OutcomeCanceled:
		out = append(out, statusWord{Name: "canceled", Text: "Canceled: another target came", Class: "muted"})
	case api.OutcomeError:
		out = append(out, statusWord{Name: "error", Text: "Stopped by an error", Class: "error"})
	}
	return out
}

// outcome sums up a Package Location Status in a few words and a badge
// class; nil means no attempt was reported.
func outcome(ls *api.LocationStatus) statusWord {
	if ls == nil {
		return statusWord{Text: "No relocation", Class: "muted"}
	}
	s := wharf.RelocationStatus(ls.LastStatus)
	switch {
	case ls.Progress != nil || s.Has(wharf.RelocationInProgress):
		if p := ls.Progress; p != nil && p.BytesTotal > 0 {
			return statusWord{Text: fmt.Sprintf("Relocating, %d%%", percent(p.BytesDone, p.BytesTotal)), Class: "info"}
		}
		return statusWord{Text: "Relocating", Class: "info"}
	case s.Has(wharf.RelocationRetriesExhausted):
		return statusWord{Text: "Retries exhausted", Class: "error"}
	case s.Has(wharf.RelocationSomeNotMoved):
		return statusWord{Text: "Warning: packages behind links", Class: "warn"}
	case s&wharf.RelocationPrerequisites != 0:
		return statusWord{Text: "Refused: prerequisites", Class: "error"}
	case s.Has(wharf.RelocationSuccess):
		return statusWord{Text: "Relocated", Class: "ok"}
	case ls.Outcome == api.OutcomeCanceled:
		return statusWord{Text: "Canceled", Class: "muted"}
	case ls.Outcome == api.OutcomeError:
		return statusWord{Text: "Stopped by an error", Class: "error"}
	}
	return statusWord{Text: "Unknown (" + s.String() + ")", Class: "muted"}
}

// relocationState shows one package's relocation state (SPEC §6.6).
func relocationState(state string) statusWord {
	switch state {
	case api.RelocationMoved:
		return statusWord{Name: state, Text: "Moved", Class: "ok"}
	case api.RelocationLinked:
		return statusWord{Name: state, Text: "Linked (left at the old place)", Class: "warn"}
	case api.RelocationPending:
		return statusWord{Name: state, Text: "Pending", Class: "info"}
	case api.RelocationFailed:
		return statusWord{Name: state, Text: "Failed", Class: "error"}
	}
	return statusWord{Name: state, Text: state, Class: "muted"}
}

// downloadState shows a package state a PS reported.
func downloadState(state string) statusWord {
	switch state {
	case api.StateReady:
		return statusWord{Name: state, Text: "Ready", Class: "ok"}
	case api.StateDownloading:
		return statusWord{Name: state, Text: "Downloading", Class: "info"}
	case api.StateFailed:
		return statusWord{Name: state, Text: "Failed", Class: "error"}
	case api.StateUnavailable:
		return statusWord{Name: state, Text: "Unavailable", Class: "warn"}
	}
	return statusWord{Name: state, Text: state, Class: "muted"}
}

// parseRate reads a bandwidth as the CLI does: "0", "unlimited" or a size
// per second such as 50MB/s or 1GiB/s.
func parseRate(s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	return wharf.ParseBandwidth(s)
}
