package ps

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/fetch"
	"github.com/wharf-project/wharf/internal/ps/linkaudit"
	"github.com/wharf-project/wharf/internal/ps/location"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/store"
)

// adminBackend is what the local admin endpoint serves (admin.Backend,
// admin.Relocator, admin.Metrics), built once from the assembled parts.
type adminBackend struct {
	id              identity
	defaultLocation string
	store           *store.Store
	fetcher         *fetch.Fetcher
	placer          *place.Rotating
	location        *location.Controller
	links           *linkaudit.Auditor
	poller          *poller
	registry        *prometheus.Registry
	log             *slog.Logger
}

// Status reports the Package Server's state: who it is, where its store
// is, the relocation state, the store in numbers, and the first limit
// packages in name order. It costs O(roots + limit), not O(packages).
func (b *adminBackend) Status(ctx context.Context, limit int) (admin.Status, error) {
	rs := b.location.Status(ctx)
	st := admin.Status{Name: b.id.name, NSURL: b.id.nsURL, URL: b.id.url, Addr: b.id.addr,
		StoragePath: rs.StoragePath, Primary: b.placer.Primary(), Relocation: &rs, Packages: []admin.PackageStatus{},
		Locations: []admin.Location{}}
	sum := b.store.Summary()
	st.PackageCount, st.States = sum.Packages, sum.States
	for _, r := range sum.Roots {
		st.Locations = append(st.Locations, admin.Location{Root: r.Root, Packages: r.Packages, Bytes: r.Bytes,
			Linked: r.Linked, Custom: r.Custom})
	}
	page, _, err := b.store.Page(ctx, "", limit)
	if err != nil {
		return admin.Status{}, err
	}
	for _, p := range page {
		state, reason := p.Reported()
		st.Packages = append(st.Packages, admin.PackageStatus{ID: p.ID, Name: p.Name, Version: p.Version,
			State: state, Reason: reason, Path: p.Path, Link: p.Link, Size: p.Size, FileCount: p.FileCount})
	}
	st.PackagesOmitted = sum.Packages - len(page)
	st.Links = b.links.Latest()
	for _, fl := range b.fetcher.Failures() {
		st.PackageCount++
		st.States[api.StateFailed]++
		if len(st.Packages) >= limit {
			st.PackagesOmitted++
			continue
		}
		st.Packages = append(st.Packages, admin.PackageStatus{ID: fl.Package.ID, Name: fl.Package.Name, Version: fl.Package.Version,
			State: api.StateFailed, Reason: fl.Reason, Size: fl.Package.Size, FileCount: fl.Package.FileCount})
	}
	return st, nil
}

// UpdateConfig makes the poll loop ask the NS now; it returns once the
// answer was applied.
func (b *adminBackend) UpdateConfig(ctx context.Context) error { return b.poller.UpdateConfig(ctx) }

// RetryRelocation queues a manual relocation retry.
func (b *adminBackend) RetryRelocation(ctx context.Context) error { return b.location.Retry(ctx) }

// PlanRelocation evaluates path as a relocation target, moving nothing.
func (b *adminBackend) PlanRelocation(ctx context.Context, path string) (*relocate.Plan, error) {
	return b.location.Plan(ctx, path)
}

// Metrics serves the PS's own registry.
func (b *adminBackend) Metrics() http.Handler {
	return promhttp.HandlerFor(b.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
