package catalog_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
)

const gib = 1024 // MiB

// synthetic makes hourly samples over days of a volume filling at
// rateMB a day, with noise of ±noiseMB, ending at endFreeMB at end.
func synthetic(end time.Time, days int, endFreeMB, rateMB, noiseMB, reserveMB int64) []catalog.VolumeSample {
	r := rand.New(rand.NewPCG(1, 2))
	n := days * 24
	out := make([]catalog.VolumeSample, 0, n+1)
	for i := n; i >= 0; i-- {
		at := end.Add(-time.Duration(i) * time.Hour)
		free := endFreeMB + int64(float64(rateMB)*float64(i)/24)
		if noiseMB > 0 {
			free += r.Int64N(2*noiseMB+1) - noiseMB
		}
		out = append(out, catalog.VolumeSample{Volume: "/data", At: at, TotalMB: 200 * gib, FreeMB: free,
			UsedMB: 150*gib - free, ReserveMB: reserveMB})
	}
	return out
}

func TestForecast(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	// 5 GiB a day, 50 GiB free, a 10 GiB reserve: the reserve in 8 days.
	f := catalog.Forecast("/data", synthetic(now, 7, 50*gib, 5*gib, 2*gib, 10*gib), now, 14*24*time.Hour)
	if f.State != api.ForecastFilling || math.Abs(f.DaysLeft-8) > 1 || !f.Alert {
		t.Errorf("filling volume: %+v; want about 8 days left and an alert (14-day horizon)", f)
	}
	if got := f.GrowthMBPerDay; math.Abs(got-5*gib) > 0.1*5*gib {
		t.Errorf("growth %.0f MiB/day, want about %d", got, 5*gib)
	}
	// The same beyond a 7-day horizon: no alert.
	if f := catalog.Forecast("/data", synthetic(now, 7, 50*gib, 5*gib, 0, 10*gib), now, 7*24*time.Hour); f.Alert || math.Abs(f.DaysLeft-8) > 0.01 {
		t.Errorf("8 days left against a 7-day horizon: %+v", f)
	}
	// Samples that stopped two days ago: counted from now.
	if f := catalog.Forecast("/data", synthetic(now.Add(-48*time.Hour), 7, 50*gib, 5*gib, 0, 10*gib), now, 0); math.Abs(f.DaysLeft-6) > 0.01 {
		t.Errorf("history ending two days ago: %.2f days left, want 6", f.DaysLeft)
	}
	if f := catalog.Forecast("/data", synthetic(now, 7, 50*gib, 0, 1, 10*gib), now, time.Hour); f.State != api.ForecastSteady || f.Alert {
		t.Errorf("steady volume: %+v", f)
	}
	if f := catalog.Forecast("/data", synthetic(now, 7, 5*gib, 5*gib, 0, 10*gib), now, time.Hour); f.State != api.ForecastUnderReserve || !f.Alert {
		t.Errorf("volume under its reserve: %+v", f)
	}
	if f := catalog.Forecast("/data", synthetic(now, 7, 50*gib, 5*gib, 0, 10*gib)[:2], now, time.Hour); f.State != api.ForecastUnknown || f.Reason == "" {
		t.Errorf("two samples: %+v", f)
	}
	if f := catalog.Forecast("/data", nil, now, time.Hour); f.State != api.ForecastUnknown {
		t.Errorf("no samples: %+v", f)
	}
}

// clock is a settable clock for the catalog.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// TestCapacityForecastFromReports feeds the catalog ten days of hourly
// health reports of a volume filling at a known rate, as a Package Server
// sends them: the forecast it keeps is within a day of the truth, and one
// alert (counted, not repeated) says so once it is under the horizon.
func TestCapacityForecastFromReports(t *testing.T) {
	e := newEnv(t)
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	clk := &clock{now: start}
	c := catalog.New(e.store, blobsOK{}, e.bus, clk.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, _ := e.enroll(c, "ps-a", "linux")
	samples := synthetic(start.Add(10*24*time.Hour), 10, 40*gib, 6*gib, 3*gib, 10*gib)
	var h api.ServerHealth
	var err error
	for _, v := range samples {
		clk.set(v.At.Add(time.Minute))
		h, err = c.ReportHealth(e.ctx, s, api.HealthReport{At: v.At, Volumes: []api.VolumeUsage{{Volume: v.Volume, Roots: []string{"/data/Package Delivery"},
			TotalMB: v.TotalMB, FreeMB: v.FreeMB, UsedMB: v.UsedMB, ReserveMB: v.ReserveMB}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := float64(40*gib-10*gib) / float64(6*gib) // 5 days
	if len(h.Capacity) != 1 {
		t.Fatalf("capacity: %+v", h.Capacity)
	}
	f := h.Capacity[0]
	if f.State != api.ForecastFilling || math.Abs(f.DaysLeft-want) > 1 || !f.Alert || f.Samples < 7*24 {
		t.Errorf("forecast after 10 days at %d MiB a day: %+v; want %.1f days left (within a day), an alert, a week of samples", 6*gib, f, want)
	}
	t.Logf("forecast: %.2f days left (true %.2f), growth %.0f MiB/day (true %d), from %d samples", f.DaysLeft, want, f.GrowthMBPerDay, 6*gib, f.Samples)
	srv, err := c.Server(e.ctx, "ps-a")
	if err != nil || srv.Health == nil || len(srv.Health.Capacity) != 1 || srv.Health.Capacity[0].DaysLeft != f.DaysLeft {
		t.Errorf("GET /servers/ps-a health: %+v %v", srv.Health, err)
	}
	alerts, _ := c.Alerts(e.ctx, true)
	var forecastAlerts []api.Alert
	for _, a := range alerts.Alerts {
		if strings.Contains(a.Message, "forecast to fall under its reserve within 14 days") {
			forecastAlerts = append(forecastAlerts, a)
		}
	}
	if len(forecastAlerts) != 1 || forecastAlerts[0].Count != 1 {
		t.Errorf("forecast alerts: %+v; want one, raised once as the forecast crossed the horizon", forecastAlerts)
	}
	// Reports from the future, or too old, or with negative sizes are refused.
	clk.add(time.Hour)
	for _, bad := range []api.HealthReport{
		{At: clk.Now().Add(time.Hour)},
		{At: clk.Now().Add(-40 * 24 * time.Hour)},
		{At: clk.Now(), Volumes: []api.VolumeUsage{{Volume: "/data", FreeMB: -1}}},
		{At: clk.Now(), Volumes: []api.VolumeUsage{{Volume: "/data"}, {Volume: "/data"}}},
		{At: clk.Now(), Links: &api.LinkAudit{Problems: []api.LinkProblem{{Kind: "bogus"}}}},
	} {
		if _, err := c.ReportHealth(context.Background(), s, bad); err == nil {
			t.Errorf("report %+v accepted", bad)
		}
	}
}
