package console

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
)

// capacityRow is one volume of a server on the Resource Manager: its
// forecast in words and a chart of its free space.
type capacityRow struct {
	api.VolumeForecast
	Text  statusWord
	Chart template.HTML
}

// capacityRows builds the Resource Manager's capacity table from a
// server's health: one history read per volume.
func (c *Console) capacityRows(ctx context.Context, server string, h *api.ServerHealth) ([]capacityRow, error) {
	if h == nil {
		return nil, nil
	}
	now := c.opts.Now()
	var out []capacityRow
	for _, f := range h.Capacity {
		samples, err := c.cat.VolumeHistory(ctx, server, f.Volume)
		if err != nil {
			return nil, err
		}
		out = append(out, capacityRow{VolumeForecast: f, Text: forecastWord(f), Chart: capacityChart(samples, f, now)})
	}
	return out, nil
}

// forecastWord says a forecast in a few words, with a badge class.
func forecastWord(f api.VolumeForecast) statusWord {
	switch f.State {
	case api.ForecastUnderReserve:
		return statusWord{Name: f.State, Text: "Under its reserve now", Class: "error"}
	case api.ForecastFilling:
		class := "ok"
		if f.Alert {
			class = "warn"
		}
		return statusWord{Name: f.State, Text: fmt.Sprintf("Reaches its reserve in %s (%s)", formatDays(f.DaysLeft), f.FullAt.UTC().Format("2006-01-02")), Class: class}
	case api.ForecastSteady:
		return statusWord{Name: f.State, Text: "Not filling", Class: "ok"}
	}
	return statusWord{Name: f.State, Text: "Not enough history yet", Class: "muted"}
}

// growthText says how fast a volume fills (or frees up), a day.
func growthText(mbPerDay float64) string {
	gib := math.Abs(mbPerDay) / 1024
	switch {
	case mbPerDay >= 0.05*1024:
		return fmt.Sprintf("fills %.1f GiB a day", gib)
	case mbPerDay <= -0.05*1024:
		return fmt.Sprintf("frees %.1f GiB a day", gib)
	}
	return "steady"
}

func formatDays(d float64) string {
	switch {
	case d < 1:
		return fmt.Sprintf("%.0f hours", d*24)
	case d < 10:
		return fmt.Sprintf("%.1f days", d)
	}
	return fmt.Sprintf("%.0f days", d)
}

// capacityChart draws a volume's free space over its history (a line),
// its reserve (a red line) and the forecast (a dashed line from the last
// sample to where it meets the reserve), as an inline SVG.
func capacityChart(samples []catalog.VolumeSample, f api.VolumeForecast, now time.Time) template.HTML {
	if len(samples) < 2 {
		return ""
	}
	const w, h, pad = 360.0, 110.0, 4.0
	t0 := samples[0].At
	last := samples[len(samples)-1]
	history := now.Sub(t0)
	tEnd := now
	filling := f.State == api.ForecastFilling && f.GrowthMBPerDay > 0
	if filling {
		// The forecast to where it meets the reserve, or as far as three
		// times the history shown, whichever is nearer.
		tEnd = f.FullAt
		if limit := now.Add(3 * history); tEnd.After(limit) {
			tEnd = limit
		}
		if tEnd.Before(now) {
			tEnd = now
		}
	}
	span := tEnd.Sub(t0).Seconds()
	if span <= 0 {
		return ""
	}
	top := float64(f.ReserveMB)
	for _, s := range samples {
		top = math.Max(top, float64(s.FreeMB))
	}
	top *= 1.1
	x := func(t time.Time) float64 { return pad + (w-2*pad)*t.Sub(t0).Seconds()/span }
	y := func(mb float64) float64 { return h - pad - (h-2*pad)*math.Max(0, mb)/top }
	var pts []string
	for _, s := range samples {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.At), y(float64(s.FreeMB))))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" preserveAspectRatio="none" role="img" aria-label="free space of %s over %s">`,
		w, h, template.HTMLEscapeString(f.Volume), now.Sub(t0).Round(time.Hour))
	fmt.Fprintf(&b, `<line class="reserve" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"><title>reserve %d MiB</title></line>`,
		pad, y(float64(f.ReserveMB)), w-pad, y(float64(f.ReserveMB)), f.ReserveMB)
	fmt.Fprintf(&b, `<polyline class="free" points="%s"><title>free space</title></polyline>`, strings.Join(pts, " "))
	if filling {
		endMB := float64(f.FreeMB) - f.GrowthMBPerDay*tEnd.Sub(last.At).Hours()/24
		fmt.Fprintf(&b, `<line class="forecast" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"><title>forecast: the reserve on %s</title></line>`,
			x(last.At), y(float64(last.FreeMB)), x(tEnd), y(math.Max(endMB, float64(f.ReserveMB))), f.FullAt.UTC().Format("2006-01-02"))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
