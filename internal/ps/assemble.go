package ps

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/fetch"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/healthreport"
	"github.com/wharf-project/wharf/internal/ps/linkaudit"
	"github.com/wharf-project/wharf/internal/ps/location"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/serve"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
)

// The parts' interfaces, met by the implementations assembled here.
var (
	_ fetch.NS           = (*apiclient.Client)(nil)
	_ fetch.Placer       = (*place.Rotating)(nil)
	_ fetch.Ledger       = (*place.Rotating)(nil)
	_ place.Index        = (*store.Store)(nil)
	_ place.Markers      = (*storeroot.Roots)(nil)
	_ serve.Index        = (*store.Store)(nil)
	_ location.Placer    = (*place.Rotating)(nil)
	_ location.Downloads = (*fetch.Fetcher)(nil)
	_ location.Serving   = (*serve.Gate)(nil)
	_ location.State     = (*store.Store)(nil)
	_ location.NS        = (*apiclient.Client)(nil)
	_ location.Links     = (*linkaudit.Auditor)(nil)
	_ linkaudit.Index    = (*store.Store)(nil)
	_ linkaudit.Markers  = (*storeroot.Roots)(nil)
	_ linkaudit.Roots    = (*fetch.Fetcher)(nil)
	_ healthreport.NS    = (*apiclient.Client)(nil)
	_ healthreport.Store = (*store.Store)(nil)
	_ admin.Backend      = (*adminBackend)(nil)
	_ admin.Relocator    = (*adminBackend)(nil)
	_ admin.Metrics      = (*adminBackend)(nil)
)

// parts is a Package Server assembled: every part built once, each given
// what it needs at construction, none reaching back into the daemon.
//
//	store ─┬─ roots (storeroot: the layout of the store roots on the OS file system)
//	       ├─ placer (place: the one owner of where new downloads go, and of pausing them)
//	       ├─ fetcher (fetch: downloads into roots the placer picks; holds removals while a relocation runs)
//	       ├─ location (the relocation controller: moves the store, pauses placements, serving and removals)
//	       ├─ ops → gate → package handler (serve: 503 in exclusive mode; ops answers /healthz, /readyz, counts codes)
//	       ├─ poller (loop.go: the config long-poll; hands every configuration to placer, location and fetcher)
//	       ├─ links (linkaudit: checks the packages behind links on start and every interval)
//	       ├─ health (healthreport: volumes' space and the latest link audit to the NS)
//	       ├─ keyring (credential.go: the credential in effect; answers rotate-credential tasks)
//	       ├─ admin (the local endpoint: status, update-config, retry, plan, metrics)
//	       └─ ops (also on --metrics-addr: /metrics, /healthz, /readyz)
type parts struct {
	store    *store.Store
	roots    *storeroot.Roots
	placer   *place.Rotating
	fetcher  *fetch.Fetcher
	location *location.Controller
	handler  *serve.Handler
	gate     *serve.Gate
	poller   *poller
	admin    *adminBackend
	ops      *ops // /healthz, /readyz, /metrics
	links    *linkaudit.Auditor
	health   *healthreport.Reporter
	keyring  *keyring // the credential, and its rotation
}

// assemble builds every part of a Package Server over an open state DB
// and an NS client; it touches nothing on disk.
func assemble(cfg Config, id identity, cred credential, st *store.Store, client *apiclient.Client, key []byte, log *slog.Logger) (p *parts, err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p = &parts{store: st}
	p.roots = storeroot.New(fsys.OS{}, id.name, cfg.Clock)
	p.placer = place.NewRotating(place.Options{
		Primary: cfg.PrimaryLocation(), Facts: cfg.Facts,
		Reserve: place.Reserve{Percent: cfg.Storage.Reserve.Percent, Bytes: cfg.Storage.Reserve.Bytes},
		Volumes: cfg.Storage.Volumes, Index: st, Markers: p.roots, Logger: log,
	})
	p.fetcher = fetch.New(fetch.Options{
		Roots: p.roots, NS: client, Store: st, Placer: p.placer, Clock: cfg.Clock, Logger: log,
	})
	p.handler = serve.New(st, key, cfg.Clock, log)
	p.gate = serve.NewGate(p.handler, st)
	p.ops = newOps(id.name, reg)
	if p.health, err = healthreport.New(healthreport.Options{Server: id.name, NS: client, Store: st, Facts: cfg.Facts,
		Primary: p.placer, Reserve: place.Reserve{Percent: cfg.Storage.Reserve.Percent, Bytes: cfg.Storage.Reserve.Bytes},
		Interval: cfg.Health.ReportInterval, Clock: cfg.Clock, Log: log}); err != nil {
		return nil, err
	}
	if p.links, err = linkaudit.New(linkaudit.Options{Index: st, FS: fsys.OS{}, Markers: p.roots, Roots: p.fetcher,
		Interval: cfg.Health.LinkAuditInterval, Clock: cfg.Clock, Log: log, Registry: reg, OnAudit: p.health.SetLinks}); err != nil {
		return nil, err
	}
	reg.MustRegister(&storeCollector{st: st, facts: cfg.Facts,
		reserve: place.Reserve{Percent: cfg.Storage.Reserve.Percent, Bytes: cfg.Storage.Reserve.Bytes}})
	ctl, err := location.New(location.Options{
		Server: id.name, Default: cfg.PrimaryLocation(), FS: fsys.OS{}, Roots: p.roots, Facts: cfg.Facts,
		Index: st.RelocationIndex(), Journal: st.RelocationJournal(), State: st, NS: client,
		Placer: p.placer, Downloads: p.fetcher, Serving: p.gate, Links: p.links,
		Reserve:     relocate.Reserve{Percent: cfg.Storage.Reserve.Percent, Bytes: cfg.Storage.Reserve.Bytes},
		MaxAttempts: cfg.Relocation.MaxAttempts, Interval: cfg.Relocation.Interval, Bandwidth: cfg.Relocation.Bandwidth,
		Clock: cfg.Clock, Log: log, Registry: reg,
	})
	if err != nil {
		return nil, err
	}
	p.location = ctl
	p.keyring = newKeyring(cfg.InstallDir, cred, client, cfg.Clock.Now, log)
	p.poller = newPoller(client, id.name, id.url, cfg.Clock, log, p.apply, p.keyring.switchToPending)
	p.admin = &adminBackend{id: id, defaultLocation: cfg.PrimaryLocation(), store: st, fetcher: p.fetcher,
		placer: p.placer, location: ctl, links: p.links, poller: p.poller, registry: reg, log: log.With("component", "ps")}
	return p, nil
}

// recover brings the store in line with the disk before anything is
// served: the relocation journal first (every package's folder in the
// state DB is then whole on disk; the placer's primary location is where
// the store is or is moving to), then the downloads.
func (p *parts) recover(ctx context.Context) error {
	if err := p.location.Recover(ctx); err != nil {
		return err
	}
	p.placer.SetPrimary(p.location.Primary())
	return p.fetcher.Recover(ctx)
}

// apply hands one configuration to the parts: the placer first (downloads
// the fetcher starts are placed under the settings that came with it), the
// relocation controller (which pauses placements until it decided about a
// new location), then the fetcher. None of them waits.
func (p *parts) apply(cfg api.AgentConfig, forced bool) {
	if p.placer.SetAllFixedDrives(cfg.Settings.AllFixedDrives) {
		p.admin.log.Info("allow usage of all fixed drives changed", "all_fixed_drives", cfg.Settings.AllFixedDrives)
	}
	// Credential rotations are the keyring's; every other task goes to
	// the relocation controller.
	tasks := cfg.Tasks[:0:0]
	for _, t := range cfg.Tasks {
		if t.Type == api.TaskRotateCredential {
			p.keyring.rotate(t.ID)
			continue
		}
		tasks = append(tasks, t)
	}
	p.location.Apply(location.Config{Location: cfg.Settings.StorageLocation, Mode: cfg.Settings.RelocationMode, Tasks: tasks})
	p.fetcher.Apply(cfg, forced)
}
