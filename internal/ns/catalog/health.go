package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Health reports (POST /agent/{name}/health): the volumes of a server, its
// link audit. The NS keeps the latest per server with the capacity
// forecast of each volume (forecast.go), and raises an alert when a volume
// is forecast to reach its reserve within the horizon, or when a link
// audit finds new problems. Alerts come on a change, not with every
// report: hourly reports of the same trouble do not repeat it.

// Limits on what a health report may hold.
const (
	maxVolumeName      = 4096
	maxReportFuture    = 5 * time.Minute // a PS clock ahead of the NS's by more is refused
	maxLinkDetailBytes = 4096
)

// ReportHealth stores a server's health report: its volumes as samples,
// the forecast of each, its link audit; it raises the alerts the changes
// call for. It returns what the NS now keeps of the server's health.
func (c *Catalog) ReportHealth(ctx context.Context, s Server, r api.HealthReport) (api.ServerHealth, error) {
	now := c.now().UTC().Truncate(time.Microsecond)
	if err := checkHealthReport(r, now); err != nil {
		return api.ServerHealth{}, err
	}
	prev, err := c.serverHealth(ctx, s.Name)
	if err != nil {
		return api.ServerHealth{}, err
	}
	at := r.At.UTC().Truncate(time.Microsecond)
	var samples []VolumeSample
	for _, v := range r.Volumes {
		samples = append(samples, VolumeSample{Volume: v.Volume, At: at, TotalMB: v.TotalMB, FreeMB: v.FreeMB,
			UsedMB: v.UsedMB, ReserveMB: v.ReserveMB})
	}
	if err := c.health.AddVolumeSamples(ctx, s.Name, samples, now.Add(-SampleRetention)); err != nil {
		return api.ServerHealth{}, err
	}
	h := api.ServerHealth{ReportedAt: now, Volumes: r.Volumes, Links: r.Links}
	if h.Links == nil && prev != nil {
		h.Links = prev.Links // a report made before the first audit of a restart
	}
	for _, v := range r.Volumes {
		f, err := c.forecastVolume(ctx, s.Name, v.Volume, now)
		if err != nil {
			return api.ServerHealth{}, err
		}
		if prev != nil && !f.Alert && f.State == api.ForecastFilling {
			for _, p := range prev.Capacity {
				if p.Volume == f.Volume && p.Alert && f.FullAt.Sub(now) < time.Duration(alertHysteresis*float64(c.horizon)) {
					f.Alert = true // still near: the alert raised stays, none again
				}
			}
		}
		h.Capacity = append(h.Capacity, f)
	}
	if err := c.putHealth(ctx, s.Name, now, h); err != nil {
		return api.ServerHealth{}, err
	}
	if err := c.healthAlerts(ctx, s.Name, prev, h); err != nil {
		return api.ServerHealth{}, err
	}
	return h, nil
}

func checkHealthReport(r api.HealthReport, now time.Time) error {
	var errs []error
	switch {
	case r.At.IsZero():
		errs = append(errs, errors.New("at: not set"))
	case r.At.After(now.Add(maxReportFuture)):
		errs = append(errs, fmt.Errorf("at: %s is ahead of the notification server's clock (%s)", r.At.UTC().Format(time.RFC3339), now.Format(time.RFC3339)))
	case r.At.Before(now.Add(-SampleRetention)):
		errs = append(errs, fmt.Errorf("at: %s is older than %s", r.At.UTC().Format(time.RFC3339), SampleRetention))
	}
	if len(r.Volumes) > api.MaxHealthVolumes {
		errs = append(errs, fmt.Errorf("volumes: %d, at most %d", len(r.Volumes), api.MaxHealthVolumes))
	}
	seen := map[string]bool{}
	for i, v := range r.Volumes {
		switch {
		case v.Volume == "" || len(v.Volume) > maxVolumeName:
			errs = append(errs, fmt.Errorf("volumes[%d]: volume: empty or longer than %d bytes", i, maxVolumeName))
		case seen[v.Volume]:
			errs = append(errs, fmt.Errorf("volumes[%d]: %q listed twice", i, v.Volume))
		case v.TotalMB < 0 || v.FreeMB < 0 || v.UsedMB < 0 || v.ReserveMB < 0:
			errs = append(errs, fmt.Errorf("volumes[%d]: sizes must not be negative", i))
		case len(v.Roots) > 1000:
			errs = append(errs, fmt.Errorf("volumes[%d]: roots: %d, at most 1000", i, len(v.Roots)))
		case wharf.CheckText(v.Volume) != nil:
			errs = append(errs, fmt.Errorf("volumes[%d]: volume: %v", i, wharf.CheckText(v.Volume)))
		}
		seen[v.Volume] = true
	}
	if l := r.Links; l != nil {
		if len(l.Problems) > api.MaxLinkProblems || l.Links < 0 || l.ProblemsOmitted < 0 {
			errs = append(errs, fmt.Errorf("links: at most %d problems, counts not negative", api.MaxLinkProblems))
		}
		for i, p := range l.Problems {
			if len(p.Detail) > maxLinkDetailBytes || len(p.Link) > maxWindowsPath || len(p.Folder) > maxWindowsPath || !knownLinkKind(p.Kind) {
				errs = append(errs, fmt.Errorf("links.problems[%d]: unknown kind %q, or a path or detail too long", i, p.Kind))
				break
			}
			if err := errors.Join(wharf.CheckText(p.Link), wharf.CheckText(p.Folder)); err != nil {
				errs = append(errs, fmt.Errorf("links.problems[%d]: link or folder: %v", i, err))
				break
			}
		}
	}
	return joinInvalid(errs)
}

func knownLinkKind(k string) bool {
	switch k {
	case api.LinkMissing, api.LinkStale, api.LinkTargetUnavailable, api.LinkTargetMissing:
		return true
	}
	return false
}

// forecastVolume forecasts one volume of a server from its samples of the
// last ForecastWindow.
func (c *Catalog) forecastVolume(ctx context.Context, server wharf.ServerName, volume string, now time.Time) (api.VolumeForecast, error) {
	samples, err := c.health.VolumeSamples(ctx, server, volume, now.Add(-ForecastWindow), forecastMaxSamples)
	if err != nil {
		return api.VolumeForecast{}, err
	}
	return Forecast(volume, samples, now, c.horizon), nil
}

// VolumeHistory returns the samples of a server's volume over the last
// ForecastWindow, oldest first: what the forecast rests on (the console
// draws them).
func (c *Catalog) VolumeHistory(ctx context.Context, name, volume string) ([]VolumeSample, error) {
	n, err := wharf.ParseServerName(name)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	return c.health.VolumeSamples(ctx, n, volume, c.now().Add(-ForecastWindow), forecastMaxSamples)
}

// serverHealth returns what the NS keeps of a server's health, nil when
// it has not reported any.
func (c *Catalog) serverHealth(ctx context.Context, name wharf.ServerName) (*api.ServerHealth, error) {
	rec, err := c.health.Health(ctx, name)
	if errors.Is(err, wharf.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h api.ServerHealth
	if err := json.Unmarshal([]byte(rec.Data), &h); err != nil {
		return nil, fmt.Errorf("health of %s in store is corrupt: %w", name, err)
	}
	return &h, nil
}

func (c *Catalog) putHealth(ctx context.Context, name wharf.ServerName, at time.Time, h api.ServerHealth) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return c.health.PutHealth(ctx, name, at, string(data))
}

// Healths returns the latest health of every server that reported one,
// by name (the metrics read them).
func (c *Catalog) Healths(ctx context.Context) (map[string]api.ServerHealth, error) {
	list, err := c.health.ListHealth(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]api.ServerHealth, len(list))
	for _, rec := range list {
		var h api.ServerHealth
		if err := json.Unmarshal([]byte(rec.Data), &h); err != nil {
			return nil, fmt.Errorf("health of %s in store is corrupt: %w", rec.Server, err)
		}
		out[string(rec.Server)] = h
	}
	return out, nil
}

// locationHealth takes what an ended Package Location Status event tells
// of a server's health: its link audit, when newer than the one kept, and
// a sample of the target's volume (matched to a volume the server reported
// by the longest mount point its path is below).
func (c *Catalog) locationHealth(ctx context.Context, name wharf.ServerName, ev api.LocationStatus) error {
	prev, err := c.serverHealth(ctx, name)
	if err != nil || prev == nil {
		return err // no report yet: nothing to match the target's volume with; the audit comes with the first report
	}
	h := *prev
	changed := false
	if ev.Links != nil && (h.Links == nil || ev.Links.At.After(h.Links.At)) {
		if err := checkHealthReport(api.HealthReport{At: ev.LastAttempt, Links: ev.Links}, c.now()); err != nil {
			return err
		}
		h.Links, changed = ev.Links, true
	}
	if vol := volumeOf(h.Volumes, ev.StoragePath); vol != "" && ev.VolumeTotalMB > 0 && !ev.LastAttempt.IsZero() &&
		!ev.LastAttempt.After(c.now().Add(maxReportFuture)) {
		s := VolumeSample{Volume: vol, At: ev.LastAttempt.UTC().Truncate(time.Microsecond), TotalMB: ev.VolumeTotalMB,
			FreeMB: ev.VolumeFreeMB, UsedMB: ev.PSUsedMB, ReserveMB: -1}
		if err := c.health.AddVolumeSamples(ctx, name, []VolumeSample{s}, c.now().Add(-SampleRetention)); err != nil {
			return err
		}
	}
	if !changed {
		return nil
	}
	if err := c.putHealth(ctx, name, c.now().UTC(), h); err != nil {
		return err
	}
	return c.healthAlerts(ctx, name, prev, h)
}

// volumeOf returns the volume of vols whose mount point path is on (the
// longest that is path or a folder above it), or "".
func volumeOf(vols []api.VolumeUsage, path string) string {
	best := ""
	for _, v := range vols {
		m := strings.TrimRight(v.Volume, `/\`)
		if (path == v.Volume || path == m || strings.HasPrefix(path, m+"/") || strings.HasPrefix(path, m+`\`) || m == "") &&
			len(v.Volume) > len(best) {
			best = v.Volume
		}
	}
	return best
}

// healthAlerts raises what changed between two healths of a server calls
// for: a volume newly forecast to reach its reserve within the horizon (or
// under it), and link problems an audit found that the previous one did
// not. The messages name no counts or dates, so a repeat while unread
// counts on the same alert.
func (c *Catalog) healthAlerts(ctx context.Context, name wharf.ServerName, prev *api.ServerHealth, h api.ServerHealth) error {
	was := map[string]api.VolumeForecast{}
	if prev != nil {
		for _, f := range prev.Capacity {
			was[f.Volume] = f
		}
	}
	days := int(c.horizon.Hours() / 24)
	for _, f := range h.Capacity {
		p, known := was[f.Volume]
		var msg string
		switch {
		case f.State == api.ForecastUnderReserve && (!known || p.State != api.ForecastUnderReserve):
			msg = fmt.Sprintf("%s: volume %s has less free space than its reserve: new packages go to another volume or fail", name, f.Volume)
		case f.State == api.ForecastFilling && f.Alert && (!known || !p.Alert):
			msg = fmt.Sprintf("%s: volume %s is forecast to fall under its reserve within %d days at its current growth", name, f.Volume, days)
		default:
			continue
		}
		if _, err := c.raise(ctx, Alert{Server: name, Level: api.AlertWarning, Message: msg}); err != nil {
			return err
		}
	}
	counts := func(h *api.ServerHealth) map[string]int {
		if h == nil || h.Links == nil {
			return nil
		}
		return h.Links.Counts
	}
	now, before := counts(&h), counts(prev)
	if maps.Equal(now, before) {
		return nil
	}
	var msgs []string
	if now[api.LinkTargetUnavailable] > before[api.LinkTargetUnavailable] {
		msgs = append(msgs, fmt.Sprintf("%s: packages left behind links are not served: the volume holding them is unavailable (link audit)", name))
	}
	for _, k := range []string{api.LinkTargetMissing, api.LinkMissing, api.LinkStale} {
		if now[k] > before[k] {
			msgs = append(msgs, fmt.Sprintf("%s: links of packages left behind by a relocation are broken (link audit: %s); a retry relocation mends what it can", name, k))
		}
	}
	for _, m := range slices.Compact(msgs) {
		if _, err := c.raise(ctx, Alert{Server: name, Level: api.AlertWarning, Message: m}); err != nil {
			return err
		}
	}
	return nil
}
