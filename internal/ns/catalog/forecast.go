package catalog

import (
	"fmt"
	"math"
	"time"

	"github.com/wharf-project/wharf/internal/api"
)

// Capacity forecast. A Package Server reports the space of each volume
// holding its store every hour (its health report) and with every
// relocation attempt (the Package Location Status); the NS keeps those
// samples for SampleRetention and, at each report, draws a least-squares
// line through the free space of the last ForecastWindow: its slope is the
// current growth, and where it meets the reserve is when new packages will
// no longer fit on that volume.
const (
	// ForecastWindow is the history a forecast rests on.
	ForecastWindow = 7 * 24 * time.Hour
	// SampleRetention is how long samples are kept.
	SampleRetention = 30 * 24 * time.Hour
	// DefaultForecastHorizon: a volume forecast to reach its reserve
	// sooner raises an alert.
	DefaultForecastHorizon = 14 * 24 * time.Hour
	// forecastMinSamples and forecastMinSpan: less history tells no
	// growth.
	forecastMinSamples = 3
	forecastMinSpan    = 6 * time.Hour
	// alertHysteresis: a volume that raised an alert keeps it until its
	// forecast moves this much beyond the horizon, so a forecast near
	// the horizon does not raise it again with every report.
	alertHysteresis = 1.5
	// forecastMaxSamples bounds the samples one forecast reads (hourly
	// reports for a week are 168).
	forecastMaxSamples = 5000
	// steadyMBPerDay: a slower growth is no growth (noise, rounding).
	steadyMBPerDay = 1.0
)

// Forecast says when a volume's free space falls under its reserve at the
// growth its samples (oldest first) show, seen at now; horizon sets Alert.
// The growth is the slope of the least-squares line through the free space
// against time; the date is where that line meets the reserve (the line,
// not the last sample, so one noisy sample does not move it).
func Forecast(volume string, samples []VolumeSample, now time.Time, horizon time.Duration) api.VolumeForecast {
	f := api.VolumeForecast{Volume: volume, State: api.ForecastUnknown, Samples: len(samples)}
	if len(samples) == 0 {
		f.Reason = "no samples"
		return f
	}
	last := samples[len(samples)-1]
	f.FreeMB, f.TotalMB, f.Since = last.FreeMB, last.TotalMB, samples[0].At
	f.ReserveMB = -1
	for i := len(samples) - 1; i >= 0 && f.ReserveMB < 0; i-- {
		f.ReserveMB = samples[i].ReserveMB
	}
	if f.ReserveMB < 0 {
		f.ReserveMB = last.TotalMB * 5 / 100 // storage.reserve's default, when no sample said
	}
	span := last.At.Sub(samples[0].At)
	enough := len(samples) >= forecastMinSamples && span >= forecastMinSpan
	fitted := float64(f.FreeMB) // the line's free space at the last sample
	if enough {
		var slope float64
		slope, fitted = fitLine(samples)
		f.GrowthMBPerDay = -slope
	}
	switch {
	case f.FreeMB <= f.ReserveMB:
		f.State, f.Alert = api.ForecastUnderReserve, true
	case !enough:
		f.Reason = fmt.Sprintf("%d samples over %s; a forecast needs %d over %s at least", len(samples),
			span.Round(time.Minute), forecastMinSamples, forecastMinSpan)
	case f.GrowthMBPerDay < steadyMBPerDay:
		f.State = api.ForecastSteady
	default:
		days := math.Max(0, fitted-float64(f.ReserveMB)) / f.GrowthMBPerDay
		f.FullAt = last.At.Add(time.Duration(days * 24 * float64(time.Hour))).UTC().Truncate(time.Second)
		f.DaysLeft = math.Max(0, f.FullAt.Sub(now).Hours()/24)
		f.State = api.ForecastFilling
		f.Alert = f.FullAt.Sub(now) < horizon
	}
	return f
}

// fitLine returns the slope, in MiB a day, of the least-squares line
// through the samples' free space, and its value at the last sample.
func fitLine(samples []VolumeSample) (slope, atLast float64) {
	t0 := samples[0].At
	var sx, sy float64
	for _, s := range samples {
		sx += s.At.Sub(t0).Hours() / 24
		sy += float64(s.FreeMB)
	}
	n := float64(len(samples))
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for _, s := range samples {
		dx := s.At.Sub(t0).Hours()/24 - mx
		sxy += dx * (float64(s.FreeMB) - my)
		sxx += dx * dx
	}
	xLast := samples[len(samples)-1].At.Sub(t0).Hours() / 24
	if sxx == 0 {
		return 0, my
	}
	slope = sxy / sxx
	return slope, my + slope*(xLast-mx)
}
