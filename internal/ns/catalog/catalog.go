package catalog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/urlsign"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Blobs is what the catalog needs of the blob store.
type Blobs interface {
	// Size returns the size of a stored blob, or an error wrapping
	// wharf.ErrNotFound.
	Size(d wharf.Digest) (int64, error)
	// Delete removes a blob; removing a missing one is not an error.
	Delete(d wharf.Digest) error
}

// Default durations.
const (
	EnrollTokenTTL  = 24 * time.Hour
	SignedURLTTL    = 1 * time.Hour
	DefaultPollWait = 30 * time.Second
	MaxPollWait     = 300 * time.Second
)

const adminTokenKey = "admin_token_sha256"

// Catalog applies the NS's rules over a Store. It is safe for concurrent
// use.
type Catalog struct {
	packages    PackageStore
	settings    SettingStore
	servers     ServerStore
	policies    PolicyStore
	locations   LocationStore
	tasks       TaskStore
	clientStore ClientStore
	health      HealthStore
	blobs       Blobs
	notify      Notifier
	now         func() time.Time
	log         *slog.Logger
	fleet       *fleet
	origin      string        // names this catalog in the changes it announces
	observer    Observer      // never nil
	horizon     time.Duration // capacity forecasts closer than this raise an alert

	adminMu   sync.Mutex
	adminHash []byte // nil: read it from the store
	adminGen  uint64 // bumped when the admin token is replaced
	clients   clientCache
}

// New returns a catalog. now is the clock (time.Now in production). Run
// Serve for as long as it is used: it listens to changes made by other NS
// processes and writes the servers' last contacts.
func New(store Store, blobs Blobs, notify Notifier, now func() time.Time, log *slog.Logger, opts ...Option) *Catalog {
	c := &Catalog{packages: store, settings: store, servers: store, policies: store, locations: store, tasks: store,
		health: store, clientStore: store, blobs: blobs, notify: notify, now: now, log: log.With("component", "catalog"),
		fleet: newFleet(store), origin: newSecret(""), observer: noObserver{}, horizon: DefaultForecastHorizon}
	for _, o := range opts {
		o(c)
	}
	c.fleet.observer = c.observer
	return c
}

// Option changes how New builds a catalog.
type Option func(*Catalog)

// WithObserver has the catalog tell o what it does (the NS's metrics).
func WithObserver(o Observer) Option {
	return func(c *Catalog) {
		if o != nil {
			c.observer = o
		}
	}
}

// WithForecastHorizon sets how close a volume may be forecast to reach
// its reserve before an alert is raised (default DefaultForecastHorizon).
func WithForecastHorizon(d time.Duration) Option {
	return func(c *Catalog) {
		if d > 0 {
			c.horizon = d
		}
	}
}

// Observer learns what the catalog does, for metrics. Its methods are
// called on the goroutine doing the work and must return at once.
type Observer interface {
	// ChangeApplied: a change (of part, as Change.Part names it) was
	// applied to the fleet's memory in took, and woke that many polls.
	ChangeApplied(part string, took time.Duration, woke int64)
	// AlertRaised: an alert of level was raised; repeat when it counted
	// as a repeat of an unread one.
	AlertRaised(level string, repeat bool)
}

type noObserver struct{}

func (noObserver) ChangeApplied(string, time.Duration, int64) {}
func (noObserver) AlertRaised(string, bool)                   {}

// ---- packages

// CreatePackage checks a manifest and stores the package. When a package of
// the same name and version exists with the same content it returns that
// one and created=false; with other content it fails with wharf.ErrExists.
func (c *Catalog) CreatePackage(ctx context.Context, m api.PackageManifest) (api.Package, bool, error) {
	p, err := checkManifest(m)
	if err != nil {
		return api.Package{}, false, err
	}
	// Package creation and blob garbage collection exclude each other in
	// every NS process on the store, so a blob is never deleted while a new
	// package that names it is created.
	unlock, err := c.packages.LockBlobs(ctx)
	if err != nil {
		return api.Package{}, false, err
	}
	defer unlock()
	if old, err := c.findByNameVersion(ctx, p.Name, p.Version); err == nil {
		full, err := c.packages.Package(ctx, old.ID)
		if err != nil {
			return api.Package{}, false, err
		}
		if sameContent(full, p) {
			return wirePackage(full), false, nil
		}
		return api.Package{}, false, fmt.Errorf("package %s version %s exists with other content: %w", p.Name, p.Version, wharf.ErrExists)
	} else if !errors.Is(err, wharf.ErrNotFound) {
		return api.Package{}, false, err
	}
	for _, f := range p.Files {
		size, err := c.blobs.Size(f.SHA256)
		if errors.Is(err, wharf.ErrNotFound) {
			return api.Package{}, false, wharf.Errorf(wharf.ErrInvalid, "file %q: blob %s was not uploaded", f.Path, f.SHA256)
		}
		if err != nil {
			return api.Package{}, false, err
		}
		if size != f.Size {
			return api.Package{}, false, wharf.Errorf(wharf.ErrInvalid, "file %q: size %d, but blob %s has %d bytes", f.Path, f.Size, f.SHA256, size)
		}
	}
	p.ID = wharf.NewPackageID()
	p.CreatedAt = c.now().UTC().Truncate(time.Microsecond)
	if err := c.packages.CreatePackage(ctx, p); err != nil {
		return api.Package{}, false, err
	}
	c.changed(ctx, Change{Part: PartPackages, Package: p.ID})
	return wirePackage(p), true, nil
}

func (c *Catalog) findByNameVersion(ctx context.Context, name, version string) (Package, error) {
	list, err := c.packages.ListPackages(ctx, PackageFilter{Name: name, Version: version})
	if err != nil {
		return Package{}, err
	}
	if len(list) == 0 {
		return Package{}, fmt.Errorf("package %s version %s: %w", name, version, wharf.ErrNotFound)
	}
	return list[0], nil
}

// Package returns a package with its files and the states servers reported.
func (c *Catalog) Package(ctx context.Context, id string) (api.Package, error) {
	pid, err := parseID(id)
	if err != nil {
		return api.Package{}, err
	}
	p, err := c.packages.Package(ctx, pid)
	if err != nil {
		return api.Package{}, err
	}
	out := wirePackage(p)
	states, err := c.packages.PackageStates(ctx, StateFilter{PackageID: pid})
	if err != nil {
		return api.Package{}, err
	}
	for _, s := range states {
		out.States = append(out.States, wireState(s))
	}
	return out, nil
}

// ReadPackage returns a package with its files, without the states
// servers reported (where they keep it is the administrator's business):
// what a client reads. With publicOnly (a caller without a token) a signed
// package is refused with wharf.ErrUnauthorized.
func (c *Catalog) ReadPackage(ctx context.Context, id string, publicOnly bool) (api.Package, error) {
	pid, err := parseID(id)
	if err != nil {
		return api.Package{}, err
	}
	p, err := c.packages.Package(ctx, pid)
	if err != nil {
		return api.Package{}, err
	}
	if publicOnly && p.Signed {
		return api.Package{}, notPublic(pid)
	}
	return wirePackage(p), nil
}

func notPublic(id wharf.PackageID) error {
	return wharf.Errorf(wharf.ErrUnauthorized, "package %s is not public: reading it takes a client token (--token, WHARF_TOKEN)", id)
}

// ListPackages lists packages, optionally filtered by name and version.
func (c *Catalog) ListPackages(ctx context.Context, name, version string) ([]api.PackageSummary, error) {
	list, err := c.packages.ListPackages(ctx, PackageFilter{Name: name, Version: version})
	if err != nil {
		return nil, err
	}
	out := make([]api.PackageSummary, 0, len(list))
	for _, p := range list {
		out = append(out, summary(p))
	}
	return out, nil
}

// PackageQuery is a page of the package list: packages where each word of
// Query is in the name, the version or the id (ignoring case), from Offset
// on, at most Limit (all when 0), in name order.
type PackageQuery struct {
	Name, Version, Query string
	Offset, Limit        int
	// PublicOnly lists public packages only (a caller without a token).
	PublicOnly bool
}

// PackagePage returns a page of the packages and the count and bytes of all
// that match, both from SQL.
func (c *Catalog) PackagePage(ctx context.Context, q PackageQuery) (api.PackageList, error) {
	if q.Offset < 0 || q.Limit < 0 {
		return api.PackageList{}, wharf.Errorf(wharf.ErrInvalid, "offset and limit must not be negative")
	}
	f := PackageFilter{Name: q.Name, Version: q.Version, Query: q.Query, Offset: q.Offset, Limit: q.Limit, PublicOnly: q.PublicOnly}
	if q.Limit > 0 {
		f.Limit++ // one more tells whether this page is the last
	}
	list, err := c.packages.ListPackages(ctx, f)
	if err != nil {
		return api.PackageList{}, err
	}
	last := q.Limit == 0 || len(list) <= q.Limit
	if !last {
		list = list[:q.Limit]
	}
	out := api.PackageList{Packages: make([]api.PackageSummary, 0, len(list))}
	for _, p := range list {
		out.Packages = append(out.Packages, summary(p))
		out.TotalBytes += p.Size
	}
	if last && q.Offset == 0 {
		// The whole match is in hand (a filter's usual answer): no second
		// scan to count it.
		out.Total = len(list)
		return out, nil
	}
	tot, err := c.packages.CountPackages(ctx, f)
	if err != nil {
		return api.PackageList{}, err
	}
	out.Total, out.TotalBytes = tot.Count, tot.Bytes
	return out, nil
}

// PackageNames returns the name and version of each of ids that exists.
func (c *Catalog) PackageNames(ctx context.Context, ids []string) (map[string]string, error) {
	var pids []wharf.PackageID
	for _, id := range ids {
		if pid, err := wharf.ParsePackageID(id); err == nil {
			pids = append(pids, pid)
		}
	}
	out := map[string]string{}
	if len(pids) == 0 {
		return out, nil
	}
	list, err := c.packages.ListPackages(ctx, PackageFilter{IDs: pids})
	if err != nil {
		return nil, err
	}
	for _, p := range list {
		out[string(p.ID)] = p.Name + " " + p.Version
	}
	return out, nil
}

// StateCounts counts the package states every server reported, by state.
func (c *Catalog) StateCounts(ctx context.Context) (map[string]int, error) {
	return c.packages.CountStates(ctx, StateFilter{})
}

// DeletePackage deletes a package and the blobs no other package uses.
func (c *Catalog) DeletePackage(ctx context.Context, id string) error {
	pid, err := parseID(id)
	if err != nil {
		return err
	}
	unlock, err := c.packages.LockBlobs(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := c.packages.Package(ctx, pid)
	if err != nil {
		return err
	}
	if err := c.packages.DeletePackage(ctx, pid); err != nil {
		return err
	}
	c.changed(ctx, Change{Part: PartPackages, Package: pid})
	// The package is gone: a blob that cannot be removed now (on Windows,
	// one a Package Server is downloading is open without delete sharing)
	// stays as garbage, which a later upload of the same content reuses;
	// the deletion itself stands.
	for _, f := range p.Files {
		inUse, err := c.packages.BlobInUse(ctx, f.SHA256, "")
		if err != nil {
			c.log.Warn("deleted package: collect its blobs", "package", pid, "err", err)
			return nil
		}
		if !inUse {
			if err := c.blobs.Delete(f.SHA256); err != nil {
				c.log.Warn("deleted package: a blob no package uses stays", "package", pid, "blob", f.SHA256, "err", err)
			}
		}
	}
	return nil
}

func parseID(id string) (wharf.PackageID, error) {
	pid, err := wharf.ParsePackageID(id)
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	return pid, nil
}

// ---- tokens

// InitAdminToken creates the admin token on the first start and returns it
// with created=true; later starts return created=false and no token (only
// its hash is kept).
func (c *Catalog) InitAdminToken(ctx context.Context) (token string, created bool, err error) {
	token = newSecret("wharf-admin-")
	created, err = c.settings.InitSetting(ctx, adminTokenKey, hashSecret(token))
	if err != nil || !created {
		return "", false, err
	}
	return token, true, nil
}

// MintEnrollToken creates a one-time enrollment token.
func (c *Catalog) MintEnrollToken(ctx context.Context) (api.EnrollToken, error) {
	tok := newSecret("wharf-enroll-")
	exp := c.now().Add(EnrollTokenTTL).UTC().Truncate(time.Second)
	if err := c.servers.CreateEnrollToken(ctx, hashSecret(tok), exp); err != nil {
		return api.EnrollToken{}, err
	}
	return api.EnrollToken{Token: tok, ExpiresAt: exp}, nil
}

// Enroll trades a one-time enrollment token for a server credential.
func (c *Catalog) Enroll(ctx context.Context, req api.EnrollRequest) (api.Enrollment, error) {
	name, err := wharf.ParseServerName(req.Name)
	if err != nil {
		return api.Enrollment{}, wharf.Errorf(wharf.ErrInvalid, "name: %v", err)
	}
	if req.OS != "linux" && req.OS != "windows" {
		return api.Enrollment{}, wharf.Errorf(wharf.ErrInvalid, "os %q: want linux or windows", req.OS)
	}
	if err := checkServerURL(req.URL); err != nil {
		return api.Enrollment{}, wharf.Errorf(wharf.ErrInvalid, "url: %v", err)
	}
	if _, err := c.servers.Server(ctx, name); err == nil {
		return api.Enrollment{}, fmt.Errorf("server %s is enrolled already: %w", name, wharf.ErrExists)
	}
	if err := c.servers.ConsumeEnrollToken(ctx, hashSecret(req.Token), c.now()); err != nil {
		if errors.Is(err, wharf.ErrNotFound) {
			return api.Enrollment{}, wharf.Errorf(wharf.ErrUnauthorized, "enrollment token unknown, used or expired")
		}
		return api.Enrollment{}, err
	}
	cred := newSecret("wharf-ps-")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return api.Enrollment{}, err
	}
	s := Server{Name: name, OS: req.OS, URL: strings.TrimRight(req.URL, "/"), CredentialHash: hashSecret(cred),
		SigningKey: key, EnrolledAt: c.now().UTC().Truncate(time.Microsecond)}
	if err := c.servers.CreateServer(ctx, s); err != nil {
		return api.Enrollment{}, err
	}
	c.changed(ctx, Change{Part: PartServer, Server: name})
	return api.Enrollment{Name: string(name), Credential: cred, SigningKey: hex.EncodeToString(key)}, nil
}

func checkServerURL(s string) error {
	if len(s) > 2048 {
		return fmt.Errorf("longer than 2048 bytes")
	}
	if err := wharf.CheckText(s); err != nil {
		return fmt.Errorf("%+q: %v", s, err)
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("%q: want http(s)://host:port", s)
	}
	return nil
}

// AuthenticateServer returns the server whose credential this is, or an
// error wrapping wharf.ErrUnauthorized. It records the contact in memory
// (Serve writes contacts in batches). Credentials are checked against the
// fleet's memory: no database query, but a server removed or whose
// credential changed is refused at once (its Change reloads it).
func (c *Catalog) AuthenticateServer(ctx context.Context, credential string) (Server, error) {
	if credential == "" {
		return Server{}, wharf.Errorf(wharf.ErrUnauthorized, "no credential")
	}
	s, err := c.fleet.byCredential(ctx, hashSecret(credential))
	if errors.Is(err, wharf.ErrNotFound) {
		return Server{}, wharf.Errorf(wharf.ErrUnauthorized, "unknown server credential")
	}
	if err != nil {
		return Server{}, err
	}
	c.fleet.touch(s.Name, c.now().UTC().Truncate(time.Microsecond))
	return s, nil
}

func newSecret(prefix string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("catalog: crypto/rand failed: " + err.Error())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// ---- servers and agents

// ListServers lists enrolled servers.
func (c *Catalog) ListServers(ctx context.Context) ([]api.Server, error) {
	list, err := c.servers.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Server, 0, len(list))
	for _, s := range list {
		w := wireServer(s, c.fleet.contact(s.Name))
		if w.LocationStatus, err = c.latestLocation(ctx, s.Name); err != nil {
			return nil, err
		}
		if w.StoragePath, err = c.storagePathInEffect(ctx, s.Name, w.LocationStatus); err != nil {
			return nil, err
		}
		if ls := w.LocationStatus; ls != nil && len(ls.Packages) > 0 {
			// O(servers): the rows are in GET /servers/{name}.
			ls.PackagesOmitted += len(ls.Packages)
			ls.Packages = nil
		}
		out = append(out, w)
	}
	return out, nil
}

// ServerLocation returns a server's latest Package Location Status event
// (nil when it sent none): what the console's status poll needs, O(1).
func (c *Catalog) ServerLocation(ctx context.Context, name string) (*api.LocationStatus, error) {
	n, err := wharf.ParseServerName(name)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	if _, err := c.servers.Server(ctx, n); err != nil {
		return nil, err
	}
	return c.latestLocation(ctx, n)
}

// Server returns one server with the counts of the package states it
// reported and the first api.DefaultServerPackages of them.
func (c *Catalog) Server(ctx context.Context, name string) (api.Server, error) {
	return c.ServerPage(ctx, name, 0, api.DefaultServerPackages)
}

// ServerPage returns one server with the counts of the package states it
// reported and a page of them (by package id; limit 0 for none): O(limit)
// rows read, whatever the number of packages.
func (c *Catalog) ServerPage(ctx context.Context, name string, offset, limit int) (api.Server, error) {
	if offset < 0 || limit < 0 {
		return api.Server{}, wharf.Errorf(wharf.ErrInvalid, "offset and limit must not be negative")
	}
	n, err := wharf.ParseServerName(name)
	if err != nil {
		return api.Server{}, fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	s, err := c.servers.Server(ctx, n)
	if err != nil {
		return api.Server{}, err
	}
	out := wireServer(s, c.fleet.contact(s.Name))
	if out.LocationStatus, err = c.latestLocation(ctx, n); err != nil {
		return api.Server{}, err
	}
	if out.StoragePath, err = c.storagePathInEffect(ctx, n, out.LocationStatus); err != nil {
		return api.Server{}, err
	}
	if out.Health, err = c.serverHealth(ctx, n); err != nil {
		return api.Server{}, err
	}
	counts, err := c.packages.CountStates(ctx, StateFilter{Server: n})
	if err != nil {
		return api.Server{}, err
	}
	for _, k := range counts {
		out.PackagesTotal += k
	}
	if len(counts) > 0 {
		out.PackageCounts = counts
	}
	if limit > 0 {
		states, err := c.packages.PackageStates(ctx, StateFilter{Server: n, Offset: offset, Limit: limit})
		if err != nil {
			return api.Server{}, err
		}
		for _, st := range states {
			out.Packages = append(out.Packages, wireState(st))
		}
	}
	if err := c.nameRows(ctx, &out); err != nil {
		return api.Server{}, err
	}
	return out, nil
}

// nameBatch bounds the ids of one name lookup (the databases bound the
// parameters of a statement).
const nameBatch = 1000

// nameRows fills in the name and version of the packages a server's page
// lists by id (its package states and the latest event's packages): one
// query for the page's ids.
func (c *Catalog) nameRows(ctx context.Context, s *api.Server) error {
	var ids []wharf.PackageID
	for _, st := range s.Packages {
		if id, err := wharf.ParsePackageID(st.PackageID); err == nil {
			ids = append(ids, id)
		}
	}
	if ls := s.LocationStatus; ls != nil {
		for _, p := range ls.Packages {
			if id, err := wharf.ParsePackageID(p.PackageID); err == nil {
				ids = append(ids, id)
			}
		}
	}
	byID := make(map[string]Package, len(ids))
	for len(ids) > 0 {
		batch := ids[:min(len(ids), nameBatch)]
		ids = ids[len(batch):]
		list, err := c.packages.ListPackages(ctx, PackageFilter{IDs: batch})
		if err != nil {
			return err
		}
		for _, p := range list {
			byID[string(p.ID)] = p
		}
	}
	for i := range s.Packages {
		if p, ok := byID[s.Packages[i].PackageID]; ok {
			s.Packages[i].Name, s.Packages[i].Version = p.Name, p.Version
		}
	}
	if ls := s.LocationStatus; ls != nil {
		for i := range ls.Packages {
			if p, ok := byID[ls.Packages[i].PackageID]; ok {
				ls.Packages[i].Name, ls.Packages[i].Version = p.Name, p.Version
			}
		}
	}
	return nil
}

// WaitConfig returns the server's configuration (the JSON of
// api.AgentConfig) at once when its ETag differs from etag; otherwise it
// waits until a change gives it another ETag (changed=true) or the wait
// passes (changed=false). The wait is cut by up to a tenth at random, so
// polls answered together at a change do not all come back together. It
// reads memory only, and a change wakes only the polls whose configuration
// it changed.
func (c *Catalog) WaitConfig(ctx context.Context, s Server, etag string, wait time.Duration) (body []byte, newETag string, changed bool, err error) {
	if wait > 0 {
		wait -= mrand.N(wait/10 + 1)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		cfg, err := c.fleet.get(ctx, s.Name)
		if errors.Is(err, wharf.ErrNotFound) {
			return nil, "", false, wharf.Errorf(wharf.ErrUnauthorized, "server %s is not enrolled (any more)", s.Name)
		}
		if err != nil {
			return nil, "", false, err
		}
		if cfg.etag != etag {
			return cfg.body(), cfg.etag, true, nil
		}
		c.fleet.waiting.Add(1)
		select {
		case <-cfg.changed:
			c.fleet.waiting.Add(-1)
			c.fleet.wakes.Add(1)
		case <-timer.C:
			c.fleet.waiting.Add(-1)
			return nil, cfg.etag, false, nil
		case <-ctx.Done():
			c.fleet.waiting.Add(-1)
			return nil, cfg.etag, false, ctx.Err()
		}
	}
}

// PollsWaiting returns how many long polls wait for a change now: they
// read their configuration and will be woken by the next change that
// concerns them.
func (c *Catalog) PollsWaiting() int { return int(c.fleet.waiting.Load()) }

// PollStats are counters of the long polls, for metrics and the fleet
// simulator.
type PollStats struct {
	Waiting int64 // polls waiting for a change now
	Wakes   int64 // polls woken by a change of their configuration, since start
	Loads   int64 // store reads made to build configurations, since start
}

// PollStats returns the long polls' counters.
func (c *Catalog) PollStats() PollStats {
	return PollStats{Waiting: c.fleet.waiting.Load(), Wakes: c.fleet.wakes.Load(), Loads: c.fleet.loads.Load()}
}

// AgentPackage returns a package assigned to the server, with files.
func (c *Catalog) AgentPackage(ctx context.Context, s Server, id string) (api.Package, error) {
	pid, err := parseID(id)
	if err != nil {
		return api.Package{}, err
	}
	p, err := c.packages.Package(ctx, pid)
	if err != nil {
		return api.Package{}, err
	}
	if !assignedTo(p, s.Name) {
		return api.Package{}, fmt.Errorf("package %s is not assigned to %s: %w", pid, s.Name, wharf.ErrNotFound)
	}
	return wirePackage(p), nil
}

func assignedTo(p Package, name wharf.ServerName) bool {
	if p.AssignAll {
		return true
	}
	for _, n := range p.Servers {
		if n == name {
			return true
		}
	}
	return false
}

// Known package states.
var knownStates = map[string]bool{api.StateDownloading: true, api.StateReady: true, api.StateFailed: true, api.StateUnavailable: true}

// MaxStatesPerReport bounds one report.
const MaxStatesPerReport = 10_000

// ReportStates records what a server says of its packages. A server may
// report only on packages assigned to it: a report naming any other
// package is refused whole (403), nothing stored. States naming packages
// that no longer exist (deleted while the report was on its way) are
// dropped.
func (c *Catalog) ReportStates(ctx context.Context, s Server, in []api.PackageState) error {
	if len(in) > MaxStatesPerReport {
		return wharf.Errorf(wharf.ErrInvalid, "states: %d in one report, at most %d", len(in), MaxStatesPerReport)
	}
	now := c.now().UTC().Truncate(time.Microsecond)
	out := make([]PackageState, 0, len(in))
	ids := make([]wharf.PackageID, 0, len(in))
	for i, st := range in {
		if st.Server != "" && !strings.EqualFold(st.Server, string(s.Name)) {
			return wharf.Errorf(wharf.ErrForbidden, "states[%d]: server %q is not you (%s)", i, st.Server, s.Name)
		}
		pid, err := wharf.ParsePackageID(st.PackageID)
		if err != nil {
			return wharf.Errorf(wharf.ErrInvalid, "states[%d]: %v", i, err)
		}
		if !knownStates[st.State] {
			return wharf.Errorf(wharf.ErrInvalid, "states[%d]: unknown state %q", i, st.State)
		}
		if len(st.Reason) > 1024 || len(st.Path) > 8192 {
			return wharf.Errorf(wharf.ErrInvalid, "states[%d]: reason or path too long", i)
		}
		if err := wharf.CheckText(st.Path); err != nil {
			return wharf.Errorf(wharf.ErrInvalid, "states[%d]: path: %v", i, err)
		}
		if err := wharf.CheckText(st.Reason); err != nil {
			return wharf.Errorf(wharf.ErrInvalid, "states[%d]: reason: %v", i, err)
		}
		out = append(out, PackageState{Server: s.Name, PackageID: pid, State: st.State, Reason: st.Reason, Path: st.Path, UpdatedAt: now})
		ids = append(ids, pid)
	}
	pkgs, err := c.fleet.packages(ctx, ids)
	if err != nil {
		return err
	}
	for i, st := range out {
		if p, ok := pkgs[st.PackageID]; ok && !assignedTo(p, s.Name) {
			return wharf.Errorf(wharf.ErrForbidden, "states[%d]: package %s is not assigned to %s", i, st.PackageID, s.Name)
		}
	}
	return c.packages.PutPackageStates(ctx, out)
}

// BlobAllowed reports whether the server may read the blob: a package
// assigned to it lists it.
func (c *Catalog) BlobAllowed(ctx context.Context, s Server, d wharf.Digest) (bool, error) {
	return c.packages.BlobInUse(ctx, d, s.Name)
}

// Codebases lists the servers that report the package ready, with signed
// query strings for signed packages. With publicOnly (a caller without a
// token) a signed package is refused with wharf.ErrUnauthorized.
func (c *Catalog) Codebases(ctx context.Context, id string, publicOnly bool) (api.Codebases, error) {
	pid, err := parseID(id)
	if err != nil {
		return api.Codebases{}, err
	}
	p, err := c.packages.Package(ctx, pid)
	if err != nil {
		return api.Codebases{}, err
	}
	if publicOnly && p.Signed {
		return api.Codebases{}, notPublic(pid)
	}
	states, err := c.packages.PackageStates(ctx, StateFilter{PackageID: pid})
	if err != nil {
		return api.Codebases{}, err
	}
	out := api.Codebases{PackageID: string(pid), Codebases: []api.Codebase{}}
	for _, st := range states {
		// A server the package is no longer assigned to drops it on its next
		// config; its last report may still say ready.
		if st.State != api.StateReady || !assignedTo(p, st.Server) {
			continue
		}
		s, err := c.servers.Server(ctx, st.Server)
		if errors.Is(err, wharf.ErrNotFound) {
			continue
		}
		if err != nil {
			return api.Codebases{}, err
		}
		cb := api.Codebase{Server: string(s.Name), URL: s.URL + "/packages/" + string(pid) + "/"}
		if p.Signed {
			cb.Query = urlsign.Query(s.SigningKey, string(pid), c.now().Add(SignedURLTTL))
		}
		out.Codebases = append(out.Codebases, cb)
	}
	return out, nil
}
