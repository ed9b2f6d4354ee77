// Package metrics is the Notification Server's Prometheus metrics: the
// fleet as the console sees it (servers by state, each server's relocation,
// unread alerts), the long polls (held now, woken, configuration loads,
// how long a change takes to reach the polls it concerns), and the HTTP
// requests by route and status. It has its own registry, never the global
// one; the NS serves it at GET /metrics (admin token) and on the optional
// --metrics-addr listener.
//
// The fleet's gauges come from one read of every server's latest Package
// Location Status (as the dashboard makes), done at most once per
// SnapshotMaxAge whatever the number of scrapers: with several NS replicas
// each answers for the shared database; the poll and request metrics are
// each process's own.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/httpstatus"
	"github.com/wharf-project/wharf/internal/ns/catalog"
)

// Fleet is what the metrics read of the catalog; *catalog.Catalog
// implements it.
type Fleet interface {
	// ListServers lists every server with its latest Package Location
	// Status (without per-package rows).
	ListServers(ctx context.Context) ([]api.Server, error)
	// OfflineAfter is how long after its last contact a server counts as
	// offline.
	OfflineAfter(ctx context.Context) time.Duration
	// UnreadAlerts counts the unread alerts by level.
	UnreadAlerts(ctx context.Context) (map[string]int, error)
	// PollStats counts this process's long polls.
	PollStats() catalog.PollStats
	// Healths returns every server's latest health (link audit, capacity
	// forecast), by name.
	Healths(ctx context.Context) (map[string]api.ServerHealth, error)
}

var _ Fleet = (*catalog.Catalog)(nil)

// SnapshotMaxAge is how old the fleet's gauges may be: scrapes within it
// share one read of the fleet.
const SnapshotMaxAge = 10 * time.Second

// Metrics is the NS's registry and the instruments the rest of the NS
// feeds. Create it with New; it implements catalog.Observer.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	fanout   *prometheus.HistogramVec
	woken    prometheus.Histogram
	alerts   *prometheus.CounterVec
	now      func() time.Time
	log      *slog.Logger
}

var _ catalog.Observer = (*Metrics)(nil)

// New returns the metrics. The catalog takes them as its observer, so it is
// built after them; RegisterFleet then adds the fleet's gauges, read from
// it.
func New(now func() time.Time, log *slog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_ns_http_requests_total",
			Help: "HTTP requests answered, by route (the pattern that matched, such as \"GET /api/v1/agent/{name}/config\") and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_ns_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route (long polls wait up to their poll interval by design).",
			Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 15, 30, 60, 300},
		}, []string{"route"}),
		fanout: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_ns_change_fanout_seconds",
			Help:    "Time from a change (a publish, a policy, an enrollment, a task) to the polls it concerns being woken: the reload of what it changed and the wake-ups, by part changed.",
			Buckets: []float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10},
		}, []string{"part"}),
		woken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wharf_ns_change_woken_polls",
			Help:    "Long polls one change woke.",
			Buckets: []float64{0, 1, 10, 100, 1000, 10000, 100000},
		}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_ns_alerts_raised_total",
			Help: "Alerts raised, by level, and whether it was a repeat of an unread alert (counted on it, not a new one).",
		}, []string{"level", "repeat"}),
		now: now, log: log,
	}
	m.reg.MustRegister(m.requests, m.duration, m.fanout, m.woken, m.alerts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// RegisterFleet adds the gauges of the fleet f (the catalog) and of its
// long polls; call it once, while assembling the NS.
func (m *Metrics) RegisterFleet(f Fleet) {
	m.reg.MustRegister(&fleetCollector{src: f, now: m.now, log: m.log})
}

// Registry is the NS's registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ChangeApplied implements catalog.Observer.
func (m *Metrics) ChangeApplied(part string, took time.Duration, woke int64) {
	m.fanout.WithLabelValues(part).Observe(took.Seconds())
	m.woken.Observe(float64(woke))
}

// AlertRaised implements catalog.Observer.
func (m *Metrics) AlertRaised(level string, repeat bool) {
	m.alerts.WithLabelValues(level, strconv.FormatBool(repeat)).Inc()
}

// Instrument counts the requests next answers by the pattern of the
// ServeMux next is (or routes to without copying the request) and their
// status.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := httpstatus.Wrap(w)
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(sw.Status())).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// fleetCollector reports the fleet's gauges from a snapshot at most
// SnapshotMaxAge old.
type fleetCollector struct {
	src Fleet
	now func() time.Time
	log *slog.Logger

	mu   sync.Mutex // one snapshot at a time
	snap *snapshot
}

type snapshot struct {
	at      time.Time
	servers []api.Server
	offline time.Duration
	alerts  map[string]int
	health  map[string]api.ServerHealth
}

var (
	descServers = prometheus.NewDesc("wharf_ns_servers",
		"Package Servers by state: online, relocating, attention (packages behind links, retries exhausted or a target refused), offline (no contact for two poll intervals), never (not contacted since enrolling).",
		[]string{"state"}, nil)
	descRelocation = prometheus.NewDesc("wharf_ns_server_relocation",
		"1 for each Package Server, labelled with where its relocation stands: none, running, or how its last attempt ended (success, warning, refused, canceled, error).",
		[]string{"server", "state"}, nil)
	descStatus = prometheus.NewDesc("wharf_ns_server_relocation_status",
		"Status bits of each Package Server's last relocation attempt (SPEC 6.3).",
		[]string{"server"}, nil)
	descProgress = prometheus.NewDesc("wharf_ns_server_relocation_progress_ratio",
		"Share of the bytes a running relocation has copied (0 to 1), for the servers relocating.",
		[]string{"server"}, nil)
	descContact = prometheus.NewDesc("wharf_ns_server_last_contact_timestamp_seconds",
		"Unix time of each Package Server's last contact with the NS (0: never).",
		[]string{"server"}, nil)
	descUnread = prometheus.NewDesc("wharf_ns_alerts_unread",
		"Unread alerts, by level.", []string{"level"}, nil)
	descPolls = prometheus.NewDesc("wharf_ns_polls_waiting",
		"Configuration long polls this NS process holds now.", nil, nil)
	descWakes = prometheus.NewDesc("wharf_ns_poll_wakes_total",
		"Long polls this NS process answered early because their configuration changed.", nil, nil)
	descLoads = prometheus.NewDesc("wharf_ns_config_loads_total",
		"Store reads this NS process made to build configurations.", nil, nil)
	descDaysLeft = prometheus.NewDesc("wharf_ns_volume_forecast_days",
		"Days until a Package Server's volume is forecast to fall under its reserve at its current growth (0: under it now), for the volumes filling.",
		[]string{"server", "volume"}, nil)
	descVolFree = prometheus.NewDesc("wharf_ns_volume_free_bytes",
		"Free space of each volume of each Package Server, as its last health report said.", []string{"server", "volume"}, nil)
	descVolAlert = prometheus.NewDesc("wharf_ns_volume_forecast_alert",
		"1 when a volume is forecast to reach its reserve within the horizon (or is under it), else 0.", []string{"server", "volume"}, nil)
	descLinkProblems = prometheus.NewDesc("wharf_ns_link_problems",
		"Problems of the packages left behind links, by kind, as each Package Server's last link audit found them.",
		[]string{"server", "kind"}, nil)
	descSnapshotOK = prometheus.NewDesc("wharf_ns_fleet_snapshot_ok",
		"1 when the fleet's gauges could be read from the store at the last scrape, else 0 (the NS log says why).", nil, nil)
)

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descServers, descRelocation, descStatus, descProgress, descContact, descUnread,
		descPolls, descWakes, descLoads, descSnapshotOK, descDaysLeft, descVolFree, descVolAlert, descLinkProblems} {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.src.PollStats()
	ch <- prometheus.MustNewConstMetric(descPolls, prometheus.GaugeValue, float64(ps.Waiting))
	ch <- prometheus.MustNewConstMetric(descWakes, prometheus.CounterValue, float64(ps.Wakes))
	ch <- prometheus.MustNewConstMetric(descLoads, prometheus.CounterValue, float64(ps.Loads))

	now := c.now()
	if c.snap == nil || now.Sub(c.snap.at) >= SnapshotMaxAge {
		snap, err := c.read(now)
		if err != nil {
			c.log.Warn("metrics: read the fleet", "err", err)
			ch <- prometheus.MustNewConstMetric(descSnapshotOK, prometheus.GaugeValue, 0)
			return
		}
		c.snap = snap
	}
	ch <- prometheus.MustNewConstMetric(descSnapshotOK, prometheus.GaugeValue, 1)
	s := c.snap
	byState := map[string]int{}
	for _, srv := range s.servers {
		byState[catalog.ServerState(srv, now, s.offline)]++
		ls := srv.LocationStatus
		ch <- prometheus.MustNewConstMetric(descRelocation, prometheus.GaugeValue, 1, srv.Name, catalog.RelocationState(ls))
		contact := 0.0
		if !srv.LastContact.IsZero() {
			contact = float64(srv.LastContact.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descContact, prometheus.GaugeValue, contact, srv.Name)
		if ls == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descStatus, prometheus.GaugeValue, float64(ls.LastStatus), srv.Name)
		if p := ls.Progress; p != nil && p.BytesTotal > 0 {
			ch <- prometheus.MustNewConstMetric(descProgress, prometheus.GaugeValue, float64(p.BytesDone)/float64(p.BytesTotal), srv.Name)
		}
	}
	for _, st := range catalog.ServerStates {
		ch <- prometheus.MustNewConstMetric(descServers, prometheus.GaugeValue, float64(byState[st]), st)
	}
	for _, level := range []string{api.AlertInfo, api.AlertWarning} {
		ch <- prometheus.MustNewConstMetric(descUnread, prometheus.GaugeValue, float64(s.alerts[level]), level)
	}
	for server, h := range s.health {
		for _, f := range h.Capacity {
			ch <- prometheus.MustNewConstMetric(descVolFree, prometheus.GaugeValue, float64(f.FreeMB)*(1<<20), server, f.Volume)
			alert := 0.0
			if f.Alert {
				alert = 1
			}
			ch <- prometheus.MustNewConstMetric(descVolAlert, prometheus.GaugeValue, alert, server, f.Volume)
			switch f.State {
			case api.ForecastFilling:
				ch <- prometheus.MustNewConstMetric(descDaysLeft, prometheus.GaugeValue, f.DaysLeft, server, f.Volume)
			case api.ForecastUnderReserve:
				ch <- prometheus.MustNewConstMetric(descDaysLeft, prometheus.GaugeValue, 0, server, f.Volume)
			}
		}
		if l := h.Links; l != nil {
			for _, k := range []string{api.LinkTargetUnavailable, api.LinkTargetMissing, api.LinkMissing, api.LinkStale} {
				ch <- prometheus.MustNewConstMetric(descLinkProblems, prometheus.GaugeValue, float64(l.Counts[k]), server, k)
			}
		}
	}
}

// read takes a snapshot of the fleet; c.mu is held.
func (c *fleetCollector) read(now time.Time) (*snapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	servers, err := c.src.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	alerts, err := c.src.UnreadAlerts(ctx)
	if err != nil {
		return nil, err
	}
	health, err := c.src.Healths(ctx)
	if err != nil {
		return nil, err
	}
	return &snapshot{at: now, servers: servers, offline: c.src.OfflineAfter(ctx), alerts: alerts, health: health}, nil
}
