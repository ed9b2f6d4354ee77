package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// fleet is the catalog's memory of what every Package Server's
// configuration is made of, so that a long poll is answered, and an idle
// one costs, no database query.
//
// The parts many servers share — the global policies, the settings they
// give each OS, every package and the JSON of those assigned to all — are
// loaded and encoded once per change (shared). What belongs to one server —
// its record and credential hash, its overrides, its pending tasks — is
// kept per server (member) and reloaded when a change names it. Each
// member's ETag is computed from the hashes of its parts; a change that
// leaves a member's ETag as it was wakes none of its polls, so an
// enrollment, a task or an override wakes only the server concerned.
//
// Reloads are serialized (reloadMu) and read the store after the write
// they follow committed, so the last reload leaves the newest state; the
// polls read under mu.
type fleet struct {
	st       fleetStore
	observer Observer // set once, before use

	reloadMu sync.Mutex

	mu      sync.RWMutex
	loaded  bool
	shared  *shared
	members map[wharf.ServerName]*member
	byCred  map[string]wharf.ServerName // credential hash → server

	contactMu sync.Mutex
	contacts  map[wharf.ServerName]time.Time // the last contact of each server seen by this process
	written   map[wharf.ServerName]time.Time // the last contact written for it

	waiting atomic.Int64 // polls waiting for a change
	wakes   atomic.Int64 // polls woken by a change of their configuration
	loads   atomic.Int64 // store reads made for configurations (full or partial)
}

// fleetStore is what the fleet reads.
type fleetStore interface {
	PackageStore
	ServerStore
	PolicyStore
	TaskStore
}

// shared holds the parts of a configuration many servers share.
type shared struct {
	ps       api.PackageServerSettings // global policies
	ss       api.SiteServerSettings
	settings map[string]part         // by OS, for servers without overrides
	packages []pkgEntry              // every package, in packageLess order
	byID     map[wharf.PackageID]int // index in packages
	all      part                    // JSON of the summaries of packages assigned to all
	listed   map[wharf.ServerName]bool
}

// pkgEntry is a package (without files) and the JSON of its summary.
type pkgEntry struct {
	p    Package
	json []byte
}

func newPkgEntry(p Package) pkgEntry {
	b, err := json.Marshal(summary(p))
	if err != nil {
		panic("catalog: encode a package summary: " + err.Error())
	}
	return pkgEntry{p: p, json: b}
}

// packageLess orders packages in a configuration: by name, then creation
// time, then id. Every replica sorts in memory the same way, so they all
// compute the same ETags.
func packageLess(a, b Package) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(string(a.ID), string(b.ID))
}

// packagesPart encodes the summaries of the entries keep keeps as one
// JSON array, from their encoded parts.
func packagesPart(list []pkgEntry, keep func(Package) bool) part {
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	for _, e := range list {
		if !keep(e.p) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(e.json)
		n++
	}
	b.WriteByte(']')
	return part{json: b.Bytes(), sum: sha256.Sum256(b.Bytes())}
}

// part is one encoded part of a configuration and its hash.
type part struct {
	json []byte
	sum  [32]byte
}

func newPart(v any) part {
	b, err := json.Marshal(v)
	if err != nil {
		panic("catalog: encode configuration part: " + err.Error()) // plain data: cannot fail
	}
	return part{json: b, sum: sha256.Sum256(b)}
}

// member is one server as the fleet knows it.
type member struct {
	srv    Server
	psOver *api.PackageServerSettings // nil: no override
	ssOver *api.SiteServerSettings
	tasks  []api.Task

	// Derived from the above and shared; replaced whole on a change.
	settings part
	packages part
	taskPart part
	etag     string
	changed  chan struct{} // closed when etag changes
}

func newFleet(st fleetStore) *fleet {
	return &fleet{st: st, members: map[wharf.ServerName]*member{}, byCred: map[string]wharf.ServerName{},
		contacts: map[wharf.ServerName]time.Time{}, written: map[wharf.ServerName]time.Time{}}
}

// ---- reading

// config is a server's configuration as sent: its ETag and its JSON.
type config struct {
	etag    string
	changed <-chan struct{} // closed when the ETag changes
	m       *member
}

// get returns the server's configuration, loading what memory lacks.
func (f *fleet) get(ctx context.Context, name wharf.ServerName) (config, error) {
	if err := f.ensureLoaded(ctx); err != nil {
		return config{}, err
	}
	f.mu.RLock()
	m := f.members[name]
	f.mu.RUnlock()
	if m == nil {
		// Enrolled through another NS, whose change has not come yet.
		if err := f.apply(ctx, Change{Part: PartServer, Server: name}); err != nil {
			return config{}, err
		}
		f.mu.RLock()
		m = f.members[name]
		f.mu.RUnlock()
		if m == nil {
			return config{}, fmt.Errorf("server %s: %w", name, wharf.ErrNotFound)
		}
	}
	return config{etag: m.etag, changed: m.changed, m: m}, nil
}

// body encodes a configuration as the API sends it (the JSON of
// api.AgentConfig), from its encoded parts.
func (c config) body() []byte {
	m := c.m
	name, _ := json.Marshal(string(m.srv.Name))
	var b bytes.Buffer
	b.Grow(64 + len(name) + len(m.packages.json) + len(m.settings.json) + len(m.taskPart.json))
	b.WriteString(`{"server":`)
	b.Write(name)
	b.WriteString(`,"packages":`)
	b.Write(m.packages.json)
	b.WriteString(`,"settings":`)
	b.Write(m.settings.json)
	if len(m.tasks) > 0 {
		b.WriteString(`,"tasks":`)
		b.Write(m.taskPart.json)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// byCredential returns the server whose credential hashes to hash.
func (f *fleet) byCredential(ctx context.Context, hash string) (Server, error) {
	if err := f.ensureLoaded(ctx); err != nil {
		return Server{}, err
	}
	f.mu.RLock()
	name, ok := f.byCred[hash]
	var m *member
	if ok {
		m = f.members[name]
	}
	f.mu.RUnlock()
	if m != nil {
		return m.srv, nil
	}
	// Unknown here: a server enrolled through another NS whose change has
	// not come yet, or a wrong credential.
	f.loads.Add(1)
	s, err := f.st.ServerByCredential(ctx, hash)
	if err != nil {
		return Server{}, err
	}
	if err := f.apply(ctx, Change{Part: PartServer, Server: s.Name}); err != nil {
		return Server{}, err
	}
	return s, nil
}

// packages returns the packages (without files) of ids that exist, from
// memory; an id memory lacks is looked up in the store (a package created
// through another NS whose change has not come yet).
func (f *fleet) packages(ctx context.Context, ids []wharf.PackageID) (map[wharf.PackageID]Package, error) {
	if err := f.ensureLoaded(ctx); err != nil {
		return nil, err
	}
	out := make(map[wharf.PackageID]Package, len(ids))
	var missing []wharf.PackageID
	f.mu.RLock()
	sh := f.shared
	for _, id := range ids {
		if i, ok := sh.byID[id]; ok {
			out[id] = sh.packages[i].p
		} else {
			missing = append(missing, id)
		}
	}
	f.mu.RUnlock()
	for len(missing) > 0 {
		batch := missing[:min(len(missing), nameBatch)]
		missing = missing[len(batch):]
		f.loads.Add(1)
		list, err := f.st.ListPackages(ctx, PackageFilter{IDs: batch})
		if err != nil {
			return nil, err
		}
		for _, p := range list {
			out[p.ID] = p
		}
	}
	return out, nil
}

// ---- last contact

// ContactPrecision is how far the last contact written for a server may
// lag the one this process saw: a contact is written when it is this much
// newer than the last one written (or the first). Reads through this
// process see the newest one anyway.
const ContactPrecision = 30 * time.Second

// touch records a contact in memory; flushContacts writes them.
func (f *fleet) touch(name wharf.ServerName, at time.Time) {
	f.contactMu.Lock()
	if at.After(f.contacts[name]) {
		f.contacts[name] = at
	}
	f.contactMu.Unlock()
}

// contact returns the last contact this process saw, or zero.
func (f *fleet) contact(name wharf.ServerName) time.Time {
	f.contactMu.Lock()
	defer f.contactMu.Unlock()
	return f.contacts[name]
}

// flushContacts writes, in one transaction, the contacts that are
// ContactPrecision newer than the ones written (all of them with all). On
// an error they stay to write at the next flush.
func (f *fleet) flushContacts(ctx context.Context, all bool) error {
	f.contactMu.Lock()
	batch := map[wharf.ServerName]time.Time{}
	for n, at := range f.contacts {
		if w, ok := f.written[n]; !ok || at.Sub(w) >= ContactPrecision || (all && at.After(w)) {
			batch[n] = at
		}
	}
	f.contactMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := f.st.TouchServers(ctx, batch); err != nil {
		return err
	}
	f.contactMu.Lock()
	for n, at := range batch {
		f.written[n] = at
	}
	f.contactMu.Unlock()
	return nil
}

// ---- changes

// ensureLoaded loads everything when memory is empty (at the first poll,
// or after a reload failed). Polls that find it empty together wait for
// one load.
func (f *fleet) ensureLoaded(ctx context.Context) error {
	if f.isLoaded() {
		return nil
	}
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	if f.isLoaded() {
		return nil // another poll loaded it meanwhile
	}
	if err := f.loadAll(ctx); err != nil {
		return fmt.Errorf("load configurations: %w", err)
	}
	return nil
}

func (f *fleet) isLoaded() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.loaded
}

// apply reloads what a change touched and wakes the polls whose
// configuration it changed. On an error the fleet forgets everything and
// loads again at the next poll.
func (f *fleet) apply(ctx context.Context, c Change) error {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	if f.observer != nil {
		start, woke := time.Now(), f.wakes.Load()
		defer func() { f.observer.ChangeApplied(string(c.Part), time.Since(start), f.wakes.Load()-woke) }()
	}
	if !f.isLoaded() {
		// Nobody polled since the start or the last failed load: the
		// next poll loads everything (ensureLoaded). Loading now would
		// make every publish before the first poll O(packages).
		return nil
	}
	var err error
	switch {
	case c.Part == PartAll:
		err = f.loadAll(ctx)
	case c.Part == PartPackages:
		err = f.reloadShared(ctx, false, true, c.Package)
	case c.Part == PartPolicies && c.Server == "":
		err = f.reloadShared(ctx, true, false, "")
	case c.Server != "":
		err = f.reloadMember(ctx, c.Server)
	default:
		err = f.loadAll(ctx)
	}
	if err != nil {
		f.mu.Lock()
		f.loaded = false
		f.mu.Unlock()
		return fmt.Errorf("reload configurations after a change of %s: %w", c.Part, err)
	}
	return nil
}

// loadAll reads every server, override, pending task, policy and package.
func (f *fleet) loadAll(ctx context.Context) error {
	f.loads.Add(1)
	sh, err := f.loadShared(ctx, nil, true, true, "")
	if err != nil {
		return err
	}
	servers, err := f.st.ListServers(ctx)
	if err != nil {
		return err
	}
	policies, err := f.st.ListPolicies(ctx)
	if err != nil {
		return err
	}
	tasks, err := f.st.PendingTasks(ctx, "")
	if err != nil {
		return err
	}
	members := make(map[wharf.ServerName]*member, len(servers))
	for _, s := range servers {
		members[s.Name] = &member{srv: s}
	}
	for _, p := range policies {
		m := members[p.Server]
		if p.Server == "" || m == nil {
			continue
		}
		if err := m.setOverride(p); err != nil {
			return err
		}
	}
	for _, t := range tasks {
		if m := members[t.Server]; m != nil {
			w, err := wireTask(t)
			if err != nil {
				return err
			}
			m.tasks = append(m.tasks, w)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shared, f.loaded = sh, true
	old := f.members
	f.members = members
	f.byCred = make(map[string]wharf.ServerName, len(members))
	for name, m := range members {
		f.byCred[m.srv.CredentialHash] = name
		f.derive(m, old[name])
	}
	for name, o := range old {
		if members[name] == nil {
			close(o.changed) // removed: its polls learn it
		}
	}
	return nil
}

// reloadShared reloads the global policies and/or the packages (only the
// package id when it is not empty) and recomputes every member; only those
// whose ETag changed wake.
func (f *fleet) reloadShared(ctx context.Context, policies, packages bool, id wharf.PackageID) error {
	f.loads.Add(1)
	f.mu.RLock()
	prev := f.shared
	f.mu.RUnlock()
	sh, err := f.loadShared(ctx, prev, policies, packages, id)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shared = sh
	for name, m := range f.members {
		n := &member{srv: m.srv, psOver: m.psOver, ssOver: m.ssOver, tasks: m.tasks}
		f.derive(n, m)
		f.members[name] = n
	}
	return nil
}

// loadShared reads the parts named and keeps the others of prev. With an
// id, only that package is read again (created, or gone when deleted).
func (f *fleet) loadShared(ctx context.Context, prev *shared, policies, packages bool, id wharf.PackageID) (*shared, error) {
	sh := &shared{}
	if prev != nil {
		*sh = *prev
	}
	if policies || prev == nil {
		ps, _, err := packageServerKind.load(ctx, f.st, "")
		if err != nil {
			return nil, err
		}
		ss, _, err := siteServerKind.load(ctx, f.st, "")
		if err != nil {
			return nil, err
		}
		sh.ps, sh.ss = ps, ss
		sh.settings = map[string]part{}
		for _, os := range []string{"linux", "windows"} {
			sh.settings[os] = newPart(agentSettings(effectiveFrom(Server{OS: os}, ps, ss, nil, nil)))
		}
	}
	if packages || prev == nil {
		var entries []pkgEntry
		if id != "" && prev != nil {
			list, err := f.st.ListPackages(ctx, PackageFilter{IDs: []wharf.PackageID{id}})
			if err != nil {
				return nil, err
			}
			entries = make([]pkgEntry, 0, len(prev.packages)+1)
			for _, e := range prev.packages {
				if e.p.ID != id {
					entries = append(entries, e)
				}
			}
			for _, p := range list {
				e := newPkgEntry(p)
				i, _ := slices.BinarySearchFunc(entries, e, func(a, b pkgEntry) int { return packageLess(a.p, b.p) })
				entries = slices.Insert(entries, i, e)
			}
		} else {
			list, err := f.st.ListPackages(ctx, PackageFilter{})
			if err != nil {
				return nil, err
			}
			entries = make([]pkgEntry, len(list))
			for i, p := range list {
				entries[i] = newPkgEntry(p)
			}
			slices.SortFunc(entries, func(a, b pkgEntry) int { return packageLess(a.p, b.p) })
		}
		sh.packages = entries
		sh.byID = make(map[wharf.PackageID]int, len(entries))
		sh.listed = map[wharf.ServerName]bool{}
		for i, e := range entries {
			sh.byID[e.p.ID] = i
			for _, n := range e.p.Servers {
				sh.listed[n] = true
			}
		}
		sh.all = packagesPart(entries, func(p Package) bool { return p.AssignAll })
	}
	return sh, nil
}

// reloadMember reloads one server: its record, overrides and tasks.
func (f *fleet) reloadMember(ctx context.Context, name wharf.ServerName) error {
	f.loads.Add(1)
	s, err := f.st.Server(ctx, name)
	gone := errors.Is(err, wharf.ErrNotFound)
	if err != nil && !gone {
		return err
	}
	var n *member
	if !gone {
		n = &member{srv: s}
		for _, k := range []string{packageServerKind.name, siteServerKind.name} {
			rec, err := f.st.Policy(ctx, name, k)
			if errors.Is(err, wharf.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := n.setOverride(rec); err != nil {
				return err
			}
		}
		tasks, err := f.st.PendingTasks(ctx, name)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			w, err := wireTask(t)
			if err != nil {
				return err
			}
			n.tasks = append(n.tasks, w)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.members[name]
	if old != nil && f.byCred[old.srv.CredentialHash] == name {
		delete(f.byCred, old.srv.CredentialHash) // a rotated or removed credential stops working here at once
	}
	if n == nil {
		delete(f.members, name)
		if old != nil {
			close(old.changed)
		}
		return nil
	}
	f.byCred[n.srv.CredentialHash] = name
	f.derive(n, old)
	f.members[name] = n
	return nil
}

// setOverride records a stored override of the member.
func (m *member) setOverride(rec PolicyRecord) error {
	corrupt := func(err error) error {
		return fmt.Errorf("policy %s of %q in store is corrupt: %w", rec.Kind, rec.Server, err)
	}
	switch rec.Kind {
	case packageServerKind.name:
		var v api.PackageServerSettings
		if err := json.Unmarshal([]byte(rec.Data), &v); err != nil {
			return corrupt(err)
		}
		m.psOver = &v
	case siteServerKind.name:
		var v api.SiteServerSettings
		if err := json.Unmarshal([]byte(rec.Data), &v); err != nil {
			return corrupt(err)
		}
		m.ssOver = &v
	}
	return nil
}

// derive computes n's parts and ETag from f.shared, and wakes the polls
// of old (the member n replaces) when the ETag changed. f.mu is held.
func (f *fleet) derive(n, old *member) {
	sh := f.shared
	if n.psOver == nil && n.ssOver == nil {
		n.settings = sh.settings[n.srv.OS]
	} else {
		n.settings = newPart(agentSettings(effectiveFrom(n.srv, sh.ps, sh.ss, n.psOver, n.ssOver)))
	}
	if sh.listed[n.srv.Name] {
		n.packages = packagesPart(sh.packages, func(p Package) bool { return assignedTo(p, n.srv.Name) })
	} else {
		n.packages = sh.all
	}
	n.taskPart = newPart(n.tasks)
	h := sha256.New()
	h.Write([]byte(n.srv.Name))
	h.Write([]byte{0})
	h.Write(n.packages.sum[:])
	h.Write(n.settings.sum[:])
	if len(n.tasks) > 0 {
		h.Write(n.taskPart.sum[:])
	}
	n.etag = `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
	switch {
	case old == nil:
		n.changed = make(chan struct{})
	case old.etag == n.etag:
		n.changed = old.changed
	default:
		close(old.changed)
		n.changed = make(chan struct{})
	}
}
