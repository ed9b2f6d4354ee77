package ps

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/httpguard"
	"github.com/wharf-project/wharf/internal/httpstatus"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/volume"
)

// ops answers a Package Server's operations endpoints:
//
//	GET /healthz   200 while the process serves (liveness)
//	GET /readyz    200 once the store is recovered and packages are served,
//	               503 before and once it is stopping
//	GET /metrics   its Prometheus registry (only on the --metrics-addr
//	               listener and the admin socket)
//
// /healthz and /readyz are also answered on the package port, beside
// /packages/, so a load balancer in front of Package Servers can ask them.
// The daemon marks it ready and stopping; nothing in it calls back.
type ops struct {
	name     string
	registry *prometheus.Registry
	requests *codeCounters

	ready    atomic.Bool
	stopping atomic.Bool
}

func newOps(name string, reg *prometheus.Registry) *ops {
	o := &ops{name: name, registry: reg, requests: newCodeCounters()}
	reg.MustRegister(o.requests)
	return o
}

func (o *ops) healthz(w http.ResponseWriter, r *http.Request) {
	writeOpsJSON(w, http.StatusOK, map[string]string{"status": "ok", "server": o.name})
}

func (o *ops) readyz(w http.ResponseWriter, r *http.Request) {
	switch {
	case o.stopping.Load():
		writeOpsJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "stopping", "server": o.name})
	case !o.ready.Load():
		writeOpsJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting", "server": o.name})
	default:
		writeOpsJSON(w, http.StatusOK, map[string]string{"status": "ready", "server": o.name})
	}
}

func writeOpsJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// metrics serves the registry in the Prometheus text format.
func (o *ops) metrics() http.Handler {
	return promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// handler is the --metrics-addr listener's: /metrics, /healthz, /readyz.
func (o *ops) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", o.healthz)
	mux.HandleFunc("GET /readyz", o.readyz)
	mux.Handle("GET /metrics", o.metrics())
	return mux
}

// wrap puts /healthz and /readyz in front of the package handler next and
// counts what next answers by status code: one string comparison and one
// atomic add per request.
func (o *ops) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			o.healthz(w, r)
			return
		case "/readyz":
			o.readyz(w, r)
			return
		}
		sw := httpstatus.Wrap(w)
		next.ServeHTTP(sw, r)
		o.requests.inc(sw.Status())
	})
}

// serve runs the --metrics-addr listener until ctx ends.
func (o *ops) serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	hs := httpguard.Limits{}.Server(o.handler(), log)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shut); err != nil {
		hs.Close()
	}
	return nil
}

// codeCounters counts package requests by status code without a label
// lookup per request: a counter per code, read at scrape time.
type codeCounters struct {
	counts [600]atomic.Uint64
}

func newCodeCounters() *codeCounters { return &codeCounters{} }

func (c *codeCounters) inc(code int) {
	if code == 0 {
		code = http.StatusOK
	}
	if code < 100 || code >= len(c.counts) {
		code = 599
	}
	c.counts[code].Add(1)
}

var descPackageRequests = prometheus.NewDesc("wharf_ps_http_requests_total",
	"Package requests (GET and HEAD /packages/...) answered, by status code.", []string{"code"}, nil)

func (c *codeCounters) Describe(ch chan<- *prometheus.Desc) { ch <- descPackageRequests }

func (c *codeCounters) Collect(ch chan<- prometheus.Metric) {
	for code := range c.counts {
		if n := c.counts[code].Load(); n > 0 {
			ch <- prometheus.MustNewConstMetric(descPackageRequests, prometheus.CounterValue, float64(n), strconv.Itoa(code))
		}
	}
}

// storeCollector reports the store's numbers (from the index's counts in
// memory) and the space of the volumes holding its roots, at scrape time.
type storeCollector struct {
	st      *store.Store
	facts   volume.Facts
	reserve place.Reserve

	mu sync.Mutex // one scrape's volume questions at a time
}

var (
	descPackages = prometheus.NewDesc("wharf_ps_packages",
		"Packages in the store by state (ready, downloading, failed; unavailable: on a root that is not mounted or lacks its marker).",
		[]string{"state"}, nil)
	descRootPackages = prometheus.NewDesc("wharf_ps_root_packages",
		"Packages in each store root (the primary location, rotated roots, custom locations).", []string{"root"}, nil)
	descRootBytes = prometheus.NewDesc("wharf_ps_root_bytes",
		"Bytes of the packages in each store root.", []string{"root"}, nil)
	descRootLinked = prometheus.NewDesc("wharf_ps_root_linked_packages",
		"Packages in each store root that are behind a link at another root (left behind by a relocation).", []string{"root"}, nil)
	descRootAvailable = prometheus.NewDesc("wharf_ps_root_available",
		"1 when a store root is available (mounted, its marker there), else 0.", []string{"root"}, nil)
	descVolumeSize = prometheus.NewDesc("wharf_ps_volume_size_bytes",
		"Size of each volume holding a store root.", []string{"volume"}, nil)
	descVolumeFree = prometheus.NewDesc("wharf_ps_volume_free_bytes",
		"Space an unprivileged writer may still use on each volume holding a store root (f_bavail).", []string{"volume"}, nil)
	descVolumeReserve = prometheus.NewDesc("wharf_ps_volume_reserve_bytes",
		"The free space each volume keeps (storage.reserve): a package that would leave less goes elsewhere or fails.", []string{"volume"}, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackages, descRootPackages, descRootBytes, descRootLinked, descRootAvailable,
		descVolumeSize, descVolumeFree, descVolumeReserve} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := c.st.Summary()
	for _, state := range []string{api.StateReady, api.StateDownloading, api.StateFailed, api.StateUnavailable} {
		ch <- prometheus.MustNewConstMetric(descPackages, prometheus.GaugeValue, float64(sum.States[state]), state)
	}
	vols := map[string]volume.Info{}
	for _, r := range sum.Roots {
		ch <- prometheus.MustNewConstMetric(descRootPackages, prometheus.GaugeValue, float64(r.Packages), r.Root)
		ch <- prometheus.MustNewConstMetric(descRootBytes, prometheus.GaugeValue, float64(r.Bytes), r.Root)
		ch <- prometheus.MustNewConstMetric(descRootLinked, prometheus.GaugeValue, float64(r.Linked), r.Root)
		if r.Unavailable != "" {
			// Its volume may not be there: ask nothing of it.
			ch <- prometheus.MustNewConstMetric(descRootAvailable, prometheus.GaugeValue, 0, r.Root)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descRootAvailable, prometheus.GaugeValue, 1, r.Root)
		if info, err := c.facts.Stat(r.Root); err == nil {
			vols[info.Root] = info
		}
	}
	for root, info := range vols {
		ch <- prometheus.MustNewConstMetric(descVolumeSize, prometheus.GaugeValue, float64(info.TotalBytes), root)
		ch <- prometheus.MustNewConstMetric(descVolumeFree, prometheus.GaugeValue, float64(info.AvailBytes), root)
		ch <- prometheus.MustNewConstMetric(descVolumeReserve, prometheus.GaugeValue, float64(c.reserve.Of(info.TotalBytes)), root)
	}
}
