package location

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-project/wharf/internal/ps/relocate"
)

// metrics are the controller's Prometheus metrics, registered on the
// registry the daemon owns (never the global one).
type metrics struct {
	attempts     *prometheus.CounterVec // kind, result
	packages     *prometheus.CounterVec // outcome
	bytesCopied  prometheus.Counter
	running      prometheus.Gauge
	attemptsDone prometheus.Gauge
	lastStatus   prometheus.Gauge
	bytesDone    prometheus.Gauge
	bytesTotal   prometheus.Gauge
	pkgsDone     prometheus.Gauge
	pkgsTotal    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_relocation_attempts_total",
			Help: "Relocation attempts that ended, by kind (policy, resume, automatic, manual) and result (success, warning, refused, canceled, error).",
		}, []string{"kind", "result"}),
		packages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_relocation_packages_total",
			Help: "Packages a relocation attempt dealt with, by outcome (moved, linked, failed).",
		}, []string{"outcome"}),
		bytesCopied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_relocation_copied_bytes_total",
			Help: "Bytes copied between volumes by relocation (renames copy nothing).",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_relocation_running",
			Help: "1 while a relocation attempt runs.",
		}),
		attemptsDone: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_relocation_automatic_attempts_done",
			Help: "Automatic relocation retries done toward the current target.",
		}),
		lastStatus: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_relocation_last_status",
			Help: "Status bits of the last relocation attempt (SPEC 6.3).",
		}),
		bytesDone: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_relocation_progress_bytes",
			Help: "Bytes copied so far by the running attempt.",
		}),
		bytesTotal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_relocation_progress_bytes_total",
			Help: "Bytes the running attempt copies in all.",
		}),
		pkgsDone: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_relocation_progress_packages",
			Help: "Packages the running attempt dealt with so far.",
		}),
		pkgsTotal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_relocation_progress_packages_total",
			Help: "Packages the running attempt deals with in all.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.packages, m.bytesCopied, m.running, m.attemptsDone, m.lastStatus,
			m.bytesDone, m.bytesTotal, m.pkgsDone, m.pkgsTotal)
	}
	return m
}

func (m *metrics) progress(p relocate.Progress) {
	m.bytesDone.Set(float64(p.BytesDone))
	m.bytesTotal.Set(float64(p.BytesTotal))
	m.pkgsDone.Set(float64(p.PackagesDone))
	m.pkgsTotal.Set(float64(p.PackagesTotal))
}
