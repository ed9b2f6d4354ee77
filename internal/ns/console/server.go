package console

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// historyShown is how many ended attempts the Resource Manager lists.
const historyShown = 50

// serverPage is the Resource Manager of one Package Server.
type serverPage struct {
	Row         serverRow
	LS          *api.LocationStatus
	Words       []statusWord
	Running     bool
	Progress    progressView
	Phase       string // changes when an attempt starts or ends; the page script reloads then
	RelPackages []relocationRow
	Moved       int
	Linked      int
	Pending     int
	History     []api.LocationStatus
	Packages    []packageStateRow
	// PackagesTotal and PackageCounts are of every package state the
	// server reported; Packages is the first page of them.
	PackagesTotal int
	PackageCounts map[string]int
	Overrides     []overrideForm
	Effective     api.EffectivePolicy
	// Health: the latest link audit and each volume's capacity forecast.
	Health   *api.ServerHealth
	Capacity []capacityRow
	Horizon  string
}

type relocationRow struct {
	api.RelocationPackage
	Name  string
	State statusWord
}

type packageStateRow struct {
	api.PackageState
	Name  string
	State statusWord
}

// progressView is a running attempt's progress, for the page and the JSON
// endpoint alike.
type progressView struct {
	Percent int    `json:"percent"`
	Text    string `json:"text"`
}

func progressOf(ls *api.LocationStatus) progressView {
	if ls == nil || ls.Progress == nil {
		return progressView{}
	}
	p := ls.Progress
	text := fmt.Sprintf("%d of %d packages · %s of %s", p.PackagesDone, p.PackagesTotal, formatBytes(p.BytesDone), formatBytes(p.BytesTotal))
	if p.ETASeconds > 0 {
		text += " · about " + formatSeconds(p.ETASeconds) + " left"
	}
	return progressView{Percent: percent(p.BytesDone, p.BytesTotal), Text: text}
}

func running(ls *api.LocationStatus) bool {
	return ls != nil && (ls.Progress != nil || wharf.RelocationStatus(ls.LastStatus).Has(wharf.RelocationInProgress))
}

// phaseOf names the state of a server's relocation so that the page can
// tell when to reload: "none", "running", or the time the last ended
// attempt was received.
func phaseOf(ls *api.LocationStatus) string {
	switch {
	case ls == nil:
		return "none"
	case running(ls):
		return "running"
	}
	return ls.ReceivedAt.UTC().Format(time.RFC3339Nano)
}

func (c *Console) server(w http.ResponseWriter, r *http.Request, sess *session) error {
	p, err := c.serverPageData(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	c.renderServer(w, r, sess, http.StatusOK, p)
	return nil
}

func (c *Console) renderServer(w http.ResponseWriter, r *http.Request, sess *session, code int, p serverPage) {
	c.render(w, r, sess, code, "server", view{Title: p.Row.Name + " · Resource Manager", Nav: "servers", Page: p})
}

// serverPackagesShown is how many package states the Resource Manager lists.
const serverPackagesShown = 100

func (c *Console) serverPageData(ctx context.Context, name string) (serverPage, error) {
	s, err := c.cat.ServerPage(ctx, name, 0, serverPackagesShown)
	if err != nil {
		return serverPage{}, err
	}
	p := serverPage{LS: s.LocationStatus, Running: running(s.LocationStatus), Phase: phaseOf(s.LocationStatus),
		Progress: progressOf(s.LocationStatus)}
	p.Row = serverRow{Server: s, State: c.serverState(s, c.offlineAfter(ctx)), Outcome: outcome(s.LocationStatus)}
	p.Row.StoragePath, p.Row.IsDefault = storagePath(s)
	var ids []string
	if ls := s.LocationStatus; ls != nil {
		for _, rp := range ls.Packages {
			ids = append(ids, rp.PackageID)
		}
	}
	for _, st := range s.Packages {
		ids = append(ids, st.PackageID)
	}
	names, err := c.packageNames(ctx, ids)
	if err != nil {
		return p, err
	}
	if ls := s.LocationStatus; ls != nil {
		p.Words = statusWords(ls.LastStatus)
		for _, rp := range ls.Packages {
			p.RelPackages = append(p.RelPackages, relocationRow{RelocationPackage: rp, Name: names[rp.PackageID], State: relocationState(rp.State)})
			switch rp.State {
			case api.RelocationMoved:
				p.Moved++
			case api.RelocationLinked:
				p.Linked++
			default:
				p.Pending++
			}
		}
		if c := ls.PackageCounts; c != nil {
			// A large attempt's event lists only the packages that did
			// not move; its counts are of all.
			p.Moved, p.Linked, p.Pending = c.Moved, c.Linked, c.Pending+c.Failed
		}
	}
	p.PackagesTotal, p.PackageCounts = s.PackagesTotal, s.PackageCounts
	for _, st := range s.Packages {
		p.Packages = append(p.Packages, packageStateRow{PackageState: st, Name: names[st.PackageID], State: downloadState(st.State)})
	}
	p.Health = s.Health
	if p.Capacity, err = c.capacityRows(ctx, s.Name, s.Health); err != nil {
		return p, err
	}
	h, err := c.cat.LocationHistory(ctx, s.Name, historyShown)
	if err != nil {
		return p, err
	}
	p.History = h.Events
	if p.Effective, err = c.cat.EffectivePolicy(ctx, s.Name); err != nil {
		return p, err
	}
	p.Row.setConfigured(p.Effective)
	for _, kind := range []string{api.PolicyPackageServer, api.PolicySiteServer} {
		f, err := c.overrideFormFor(ctx, s.Name, kind)
		if err != nil {
			return p, err
		}
		p.Overrides = append(p.Overrides, f)
	}
	return p, nil
}

// serverStatusJSON feeds the Resource Manager's script while it waits for
// or watches a relocation.
func (c *Console) serverStatusJSON(r *http.Request) (any, error) {
	// The latest event only: O(1), polled every second or two.
	ls, err := c.cat.ServerLocation(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	return struct {
		Phase    string       `json:"phase"`
		Outcome  string       `json:"outcome"`
		Progress progressView `json:"progress"`
	}{phaseOf(ls), outcome(ls).Text, progressOf(ls)}, nil
}

func (c *Console) retryRelocation(w http.ResponseWriter, r *http.Request, sess *session) error {
	name := r.PathValue("name")
	t, err := c.cat.CreateTask(r.Context(), name, api.TaskRequest{Type: api.TaskRetryRelocation})
	if err != nil {
		return err
	}
	c.log.Info("server task created", "server", t.Server, "task", t.ID, "type", t.Type, "user", sess.user)
	c.addFlash(r, sess, "ok", fmt.Sprintf("Retry relocation queued for %s as task %s. The Package Server picks it up at once; a manual retry does not count towards the maximum of automatic retries.", t.Server, t.ID))
	redirect(w, r, "/servers/"+url.PathEscape(t.Server))
	return nil
}

// ---- the override editor

// overrideForm is the editor of one server's override of one policy kind.
type overrideForm struct {
	Kind   string
	Title  string
	Exists bool
	Rows   []overrideRow
	Error  string
}

type overrideRow struct {
	fieldSpec
	Global     string // the global value, for reading
	Effective  string // what the server runs with, for reading
	Overridden bool
	Value      string // the form text of the override (or what was submitted)
	Error      string
}

func kindTitle(kind string) string {
	if kind == api.PolicySiteServer {
		return "Global Site Server Settings"
	}
	return "Package Server Settings"
}

// policyValues returns the global values and the server's override (nil
// when it has none) of a kind, as form text per field.
func (c *Console) policyValues(ctx context.Context, server, kind string) (global, override map[string]string, err error) {
	specs := fieldsOf(kind)
	if kind == api.PolicySiteServer {
		g, err := c.cat.SiteServerPolicy(ctx, "")
		if err != nil {
			return nil, nil, err
		}
		global = fieldValues(g.Settings, specs)
		o, err := c.cat.SiteServerPolicy(ctx, server)
		if err == nil {
			override = fieldValues(o.Settings, specs)
		} else if !errors.Is(err, wharf.ErrNotFound) {
			return nil, nil, err
		}
		return global, override, nil
	}
	g, err := c.cat.PackageServerPolicy(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	global = fieldValues(g.Settings, specs)
	o, err := c.cat.PackageServerPolicy(ctx, server)
	if err == nil {
		override = fieldValues(o.Settings, specs)
	} else if !errors.Is(err, wharf.ErrNotFound) {
		return nil, nil, err
	}
	return global, override, nil
}

func (c *Console) overrideFormFor(ctx context.Context, server, kind string) (overrideForm, error) {
	global, override, err := c.policyValues(ctx, server, kind)
	if err != nil {
		return overrideForm{}, err
	}
	f := overrideForm{Kind: kind, Title: kindTitle(kind), Exists: override != nil}
	for _, spec := range fieldsOf(kind) {
		row := overrideRow{fieldSpec: spec, Global: displayValue(spec, global[spec.Name]), Value: global[spec.Name]}
		if v, ok := override[spec.Name]; ok {
			row.Overridden, row.Value = true, v
		}
		row.Effective = displayValue(spec, row.Value)
		f.Rows = append(f.Rows, row)
	}
	return f, nil
}

func checkKind(kind string) error {
	if kind != api.PolicyPackageServer && kind != api.PolicySiteServer {
		return fmt.Errorf("policy kind %q: %w", kind, wharf.ErrNotFound)
	}
	return nil
}

// setOverride applies values to the server's override of kind.
func (c *Console) setOverride(ctx context.Context, server, kind string, values map[string]any) error {
	if kind == api.PolicySiteServer {
		in, err := settingsFrom[api.SiteServerSettings](values)
		if err != nil {
			return err
		}
		_, err = c.cat.SetSiteServerPolicy(ctx, server, in)
		return err
	}
	in, err := settingsFrom[api.PackageServerSettings](values)
	if err != nil {
		return err
	}
	_, err = c.cat.SetPackageServerPolicy(ctx, server, in)
	return err
}

// saveOverride makes the server's override of one kind what the form
// says: the ticked fields with their values; the others inherit.
func (c *Console) saveOverride(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx, name, kind := r.Context(), r.PathValue("name"), r.PathValue("kind")
	if err := checkKind(kind); err != nil {
		return err
	}
	p, err := c.serverPageData(ctx, name)
	if err != nil {
		return err
	}
	server := p.Row.Name
	global, current, err := c.policyValues(ctx, server, kind)
	if err != nil {
		return err
	}
	form := overrideForm{Kind: kind, Title: kindTitle(kind), Exists: current != nil}
	desired, desiredText := map[string]any{}, map[string]string{}
	bad := false
	for _, spec := range fieldsOf(kind) {
		row := overrideRow{fieldSpec: spec, Global: displayValue(spec, global[spec.Name]),
			Overridden: r.PostForm.Get("set_"+spec.Name) != "", Value: r.PostForm.Get(spec.Name)}
		row.Effective = displayValue(spec, current[spec.Name])
		if _, ok := current[spec.Name]; !ok {
			row.Effective = row.Global
		}
		if row.Overridden {
			v, err := parseField(spec, row.Value)
			if err != nil {
				row.Error, bad = err.Error(), true
			} else {
				desired[spec.Name] = v
				desiredText[spec.Name] = fieldValues(mustSettings(kind, map[string]any{spec.Name: v}), []fieldSpec{spec})[spec.Name]
			}
		}
		form.Rows = append(form.Rows, row)
	}
	show := func(msg string) error {
		form.Error = msg
		for i := range p.Overrides {
			if p.Overrides[i].Kind == kind {
				p.Overrides[i] = form
			}
		}
		c.renderServer(w, r, sess, http.StatusBadRequest, p)
		return nil
	}
	if bad {
		return show("Nothing was saved: correct the fields marked below.")
	}
	back := "/servers/" + url.PathEscape(server) + "#overrides"
	if maps.Equal(desiredText, current) {
		c.addFlash(r, sess, "info", "No changes to the "+form.Title+" override of "+server+".")
		redirect(w, r, back)
		return nil
	}
	var removed []string
	for f := range current {
		if _, ok := desired[f]; !ok {
			removed = append(removed, f)
		}
	}
	switch {
	case len(desired) == 0:
		err = c.cat.ResetPolicy(ctx, server, kind)
	case len(removed) == 0:
		err = c.setOverride(ctx, server, kind, desired)
	default:
		// The catalog can set fields but not unset one: remove the override
		// and set it again. Between the two the server would see the global
		// values; refuse when that would briefly send it another storage
		// location, which starts a relocation.
		for _, f := range []string{"linux_location", "windows_location"} {
			if v, ok := desiredText[f]; ok && v != global[f] {
				return show(fmt.Sprintf("To stop overriding %s while %s stays overridden, remove the whole override and set %s again, "+
					"or set %s to the global value: clearing a single field would briefly send %s the global storage location.",
					strings.Join(removed, ", "), f, f, strings.Join(removed, ", "), server))
			}
		}
		// Set first: it validates (and changes nothing when refused).
		if err = c.setOverride(ctx, server, kind, desired); err == nil {
			if err = c.cat.ResetPolicy(ctx, server, kind); err == nil {
				err = c.setOverride(ctx, server, kind, desired)
			}
		}
	}
	if errors.Is(err, wharf.ErrInvalid) {
		byField, rest := fieldErrors(strings.TrimPrefix(err.Error(), "invalid: "), fieldsOf(kind))
		for i := range form.Rows {
			if m, ok := byField[form.Rows[i].Name]; ok {
				form.Rows[i].Error = m
			}
		}
		if rest == "" {
			rest = "Nothing was saved: correct the fields marked below."
		}
		return show(rest)
	}
	if err != nil {
		return err
	}
	c.log.Info("policy override saved", "server", server, "kind", kind, "fields", len(desired), "user", sess.user)
	if len(desired) == 0 {
		c.addFlash(r, sess, "ok", fmt.Sprintf("%s now inherits every field of the global %s.", server, form.Title))
	} else {
		c.addFlash(r, sess, "ok", fmt.Sprintf("Saved the %s override of %s; it receives the change within a second.", form.Title, server))
	}
	redirect(w, r, back)
	return nil
}

func mustSettings(kind string, values map[string]any) any {
	if kind == api.PolicySiteServer {
		s, _ := settingsFrom[api.SiteServerSettings](values)
		return s
	}
	s, _ := settingsFrom[api.PackageServerSettings](values)
	return s
}

func (c *Console) removeOverride(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx, kind := r.Context(), r.PathValue("kind")
	if err := checkKind(kind); err != nil {
		return err
	}
	s, err := c.cat.ServerPage(ctx, r.PathValue("name"), 0, 0)
	if err != nil {
		return err
	}
	err = c.cat.ResetPolicy(ctx, s.Name, kind)
	switch {
	case errors.Is(err, wharf.ErrNotFound):
		c.addFlash(r, sess, "info", fmt.Sprintf("%s has no %s override.", s.Name, kindTitle(kind)))
	case err != nil:
		return err
	default:
		c.log.Info("policy override removed", "server", s.Name, "kind", kind, "user", sess.user)
		c.addFlash(r, sess, "ok", fmt.Sprintf("Removed the %s override of %s: it returns to the global values.", kindTitle(kind), s.Name))
	}
	redirect(w, r, "/servers/"+url.PathEscape(s.Name)+"#overrides")
	return nil
}
