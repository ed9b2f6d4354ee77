package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Server states on the dashboard and the servers list.
var (
	stateOnline     = statusWord{Name: "online", Text: "Online", Class: "ok"}
	stateRelocating = statusWord{Name: "relocating", Text: "Relocating", Class: "info"}
	stateAttention  = statusWord{Name: "attention", Text: "Needs attention", Class: "warn"}
	stateOffline    = statusWord{Name: "offline", Text: "Offline", Class: "error"}
	stateNever      = statusWord{Name: "never", Text: "Never contacted", Class: "muted"}
	serverStates    = []statusWord{stateOnline, stateRelocating, stateAttention, stateOffline, stateNever}
)

// serverRow is one Package Server as the lists show it.
type serverRow struct {
	api.Server
	State   statusWord
	Outcome statusWord
	// StoragePath is where the PS keeps its packages: the target of its
	// last relocation that ended with success or a warning, else its
	// default location.
	StoragePath string
	IsDefault   bool
	// Configured is the effective primary location for its OS, and
	// ConfiguredOverride whether it comes from the server's override.
	Configured         string
	ConfiguredOverride bool
}

// setConfigured fills Configured from the server's effective policy.
func (r *serverRow) setConfigured(eff api.EffectivePolicy) {
	field, loc := "linux_location", eff.PackageServer.LinuxLocation
	if r.OS == "windows" {
		field, loc = "windows_location", eff.PackageServer.WindowsLocation
	}
	r.Configured = deref(loc)
	r.ConfiguredOverride = slices.Contains(eff.Overridden, field)
}

// offlineAfter is how long after its last contact a server counts as
// offline (catalog.OfflineAfter).
func (c *Console) offlineAfter(ctx context.Context) time.Duration { return c.cat.OfflineAfter(ctx) }

// serverState is catalog.ServerState in words.
func (c *Console) serverState(s api.Server, offline time.Duration) statusWord {
	switch catalog.ServerState(s, c.opts.Now(), offline) {
	case catalog.ServerNever:
		return stateNever
	case catalog.ServerOffline:
		return stateOffline
	case catalog.ServerRelocating:
		return stateRelocating
	case catalog.ServerAttention:
		return stateAttention
	}
	return stateOnline
}

// storagePath is where a server keeps its packages now, as the catalog
// tells it to the API and the CLI too (api.Server.StoragePath), and
// whether that is its default location.
func storagePath(s api.Server) (string, bool) {
	if s.StoragePath == "" {
		return "<install dir>/Package Delivery", true
	}
	return s.StoragePath, false
}

func (c *Console) serverRows(ctx context.Context) ([]serverRow, error) {
	list, err := c.cat.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	offline := c.offlineAfter(ctx)
	rows := make([]serverRow, 0, len(list))
	for _, s := range list {
		row := serverRow{Server: s, State: c.serverState(s, offline), Outcome: outcome(s.LocationStatus)}
		row.StoragePath, row.IsDefault = storagePath(s)
		eff, err := c.cat.EffectivePolicy(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		row.setConfigured(eff)
		rows = append(rows, row)
	}
	return rows, nil
}

// ---- dashboard

type stateCount struct {
	statusWord
	Count int
}

type dashboardPage struct {
	Servers       int
	ByState       []stateCount
	Attention     []serverRow
	Packages      int
	PackageBytes  int64
	PackageStates []stateCount
	Alerts        []api.Alert
	UnreadAlerts  int
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	rows, err := c.serverRows(ctx)
	if err != nil {
		return err
	}
	p := dashboardPage{Servers: len(rows)}
	counts := map[string]int{}
	for _, row := range rows {
		counts[row.State.Name]++
		if row.State != stateOnline {
			p.Attention = append(p.Attention, row)
		}
	}
	for _, st := range serverStates {
		p.ByState = append(p.ByState, stateCount{st, counts[st.Name]})
	}
	// Counted in SQL: O(servers) rows read, whatever the number of
	// packages.
	tot, err := c.cat.PackagePage(ctx, catalog.PackageQuery{Limit: 1})
	if err != nil {
		return err
	}
	p.Packages, p.PackageBytes = tot.Total, tot.TotalBytes
	states, err := c.cat.StateCounts(ctx)
	if err != nil {
		return err
	}
	for _, st := range []string{api.StateReady, api.StateDownloading, api.StateFailed, api.StateUnavailable} {
		p.PackageStates = append(p.PackageStates, stateCount{downloadState(st), states[st]})
	}
	alerts, err := c.cat.Alerts(ctx, false)
	if err != nil {
		return err
	}
	for _, a := range alerts.Alerts {
		if a.ReadAt.IsZero() {
			p.UnreadAlerts++
		}
	}
	p.Alerts = alerts.Alerts[:min(len(alerts.Alerts), 6)]
	c.render(w, r, sess, http.StatusOK, "dashboard", view{Title: "Dashboard", Nav: "dashboard", Page: p})
	return nil
}

// ---- packages

type packagesPage struct {
	Query    string
	Packages []api.PackageSummary
	Matched  int // packages the query matches, all pages
	Total    int // packages in all
	First    int // 1-based numbers of the first and last package shown
	Last     int
	PrevURL  string
	NextURL  string
}

// packagesPerPage is how many packages one page of /packages shows.
const packagesPerPage = 100

func (c *Console) packages(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	q := r.URL.Query()
	p := packagesPage{Query: strings.TrimSpace(q.Get("q"))}
	offset := 0
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return wharf.Errorf(wharf.ErrInvalid, "offset=%q: want a count, 0 or more", v)
		}
		offset = n
	}
	page, err := c.cat.PackagePage(ctx, catalog.PackageQuery{Query: p.Query, Offset: offset, Limit: packagesPerPage})
	if err != nil {
		return err
	}
	p.Packages, p.Matched, p.Total, p.First, p.Last = page.Packages, page.Total, page.Total, offset+1, offset+len(page.Packages)
	if p.Query != "" {
		all, err := c.cat.PackagePage(ctx, catalog.PackageQuery{Limit: 1})
		if err != nil {
			return err
		}
		p.Total = all.Total
	}
	link := func(off int) string {
		v := url.Values{"offset": {strconv.Itoa(off)}}
		if p.Query != "" {
			v.Set("q", p.Query)
		}
		return "/packages?" + v.Encode()
	}
	if offset > 0 {
		p.PrevURL = link(max(0, offset-packagesPerPage))
	}
	if offset+len(page.Packages) < page.Total {
		p.NextURL = link(offset + packagesPerPage)
	}
	c.render(w, r, sess, http.StatusOK, "packages", view{Title: "Packages", Nav: "packages", Page: p})
	return nil
}

// maxFilesShown bounds the file table of a package page.
const maxFilesShown = 500

type packagePage struct {
	api.Package
	Files       []api.File
	MoreFiles   int
	Assigned    []string // server names, or nil for all
	Servers     []packageServerRow
	ReadyCount  int
	ServerCount int
}

type packageServerRow struct {
	Server   string
	Known    bool
	Assigned bool
	State    *api.PackageState
}

func (c *Console) packageDetail(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	pk, err := c.cat.Package(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	servers, err := c.cat.ListServers(ctx)
	if err != nil {
		return err
	}
	p := packagePage{Package: pk, Files: pk.Files}
	if len(p.Files) > maxFilesShown {
		p.Files, p.MoreFiles = p.Files[:maxFilesShown], len(p.Files)-maxFilesShown
	}
	assigned := map[string]bool{}
	for _, n := range pk.Assignment.Servers {
		assigned[strings.ToLower(n)] = true
	}
	states := map[string]*api.PackageState{}
	for i := range pk.States {
		states[strings.ToLower(pk.States[i].Server)] = &pk.States[i]
	}
	known := map[string]bool{}
	for _, s := range servers {
		key := strings.ToLower(s.Name)
		known[key] = true
		row := packageServerRow{Server: s.Name, Known: true, Assigned: pk.Assignment.All || assigned[key], State: states[key]}
		if !row.Assigned && row.State == nil {
			continue
		}
		if row.Assigned {
			p.ServerCount++
		}
		if row.State != nil && row.State.State == api.StateReady {
			p.ReadyCount++
		}
		p.Servers = append(p.Servers, row)
	}
	for _, n := range pk.Assignment.Servers {
		if !known[strings.ToLower(n)] {
			p.Servers = append(p.Servers, packageServerRow{Server: n, Assigned: true})
			p.ServerCount++
		}
	}
	title := fmt.Sprintf("%s %s", pk.Name, pk.Version)
	c.render(w, r, sess, http.StatusOK, "package", view{Title: title, Nav: "packages", Page: p})
	return nil
}

// ---- servers

type serversPage struct {
	Servers []serverRow
}

func (c *Console) servers(w http.ResponseWriter, r *http.Request, sess *session) error {
	rows, err := c.serverRows(r.Context())
	if err != nil {
		return err
	}
	c.render(w, r, sess, http.StatusOK, "servers", view{Title: "Package Servers", Nav: "servers", Page: serversPage{rows}})
	return nil
}

// ---- alerts

type alertsPage struct {
	Unread bool
	Alerts []api.Alert
	Count  int // unread ones
}

func (c *Console) alerts(w http.ResponseWriter, r *http.Request, sess *session) error {
	p := alertsPage{Unread: r.URL.Query().Get("show") == "unread"}
	list, err := c.cat.Alerts(r.Context(), p.Unread)
	if err != nil {
		return err
	}
	p.Alerts = list.Alerts
	for _, a := range list.Alerts {
		if a.ReadAt.IsZero() {
			p.Count++
		}
	}
	c.render(w, r, sess, http.StatusOK, "alerts", view{Title: "Alerts", Nav: "alerts", Page: p})
	return nil
}

func alertsBack(r *http.Request) string {
	if r.PostForm.Get("show") == "unread" {
		return "/alerts?show=unread"
	}
	return "/alerts"
}

func (c *Console) markAlertRead(w http.ResponseWriter, r *http.Request, sess *session) error {
	if err := c.cat.MarkAlertRead(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	redirect(w, r, alertsBack(r))
	return nil
}

func (c *Console) markAllAlertsRead(w http.ResponseWriter, r *http.Request, sess *session) error {
	n, err := c.cat.MarkAllAlertsRead(r.Context())
	if err != nil {
		return err
	}
	c.addFlash(r, sess, "ok", fmt.Sprintf("Marked %s read.", plural(n, "alert", "alerts")))
	redirect(w, r, alertsBack(r))
	return nil
}

// packageNames maps the package ids of ids to "name version" for the
// tables that only have ids: one query for those rows only.
func (c *Console) packageNames(ctx context.Context, ids []string) (map[string]string, error) {
	return c.cat.PackageNames(ctx, ids)
}
