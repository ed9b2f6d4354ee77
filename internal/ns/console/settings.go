package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// settingsPage is Settings → Site Server Settings: the two global policies.
type settingsPage struct {
	PS psForm
	SS ssForm
}

// psForm is the Package Server Settings form.
type psForm struct {
	Version        int64
	UpdatedAt      time.Time
	Locations      []locationField // Windows, then Linux, as in the article
	AllFixedDrives bool
	RelocationMode string
	Errors         map[string]string // by field name
	Error          string            // about the whole form
}

// locationField is one OS's primary file storage location: Default, or
// Custom with a path, and its Check button.
type locationField struct {
	OS          string // windows, linux
	Name        string // windows_location, linux_location
	Label       string
	Placeholder string
	Custom      bool
	Path        string
	Error       string
	Servers     []string // enrolled servers of this OS, for Check
	CheckServer string
	Check       *checkView
}

// checkView is a check-location task and, once answered, its plan.
type checkView struct {
	Server    string
	Path      string
	TaskID    string
	Done      bool
	Error     string
	Plan      *api.LocationPlan
	Words     []statusWord
	StatusURL string
}

// ssForm is the Global Site Server Settings form.
type ssForm struct {
	Version     int64
	UpdatedAt   time.Time
	Poll        string
	Concurrency string
	Bandwidth   string
	Errors      map[string]string
	Error       string
}

func newLocations() []locationField {
	return []locationField{
		{OS: "windows", Name: "windows_location", Label: "Windows", Placeholder: `E:\Store\PS-packages`},
		{OS: "linux", Name: "linux_location", Label: "Linux", Placeholder: "/srv/wharf"},
	}
}

// currentPS fills a form with the stored Package Server Settings.
func (c *Console) currentPS(ctx context.Context) (psForm, error) {
	g, err := c.cat.PackageServerPolicy(ctx, "")
	if err != nil {
		return psForm{}, err
	}
	f := psForm{Version: g.Version, UpdatedAt: g.UpdatedAt, Locations: newLocations(), Errors: map[string]string{},
		AllFixedDrives: g.Settings.AllFixedDrives != nil && *g.Settings.AllFixedDrives, RelocationMode: deref(g.Settings.RelocationMode)}
	for i, v := range []*string{g.Settings.WindowsLocation, g.Settings.LinuxLocation} {
		if v != nil && *v != api.LocationDefault {
			f.Locations[i].Custom, f.Locations[i].Path = true, *v
		}
	}
	return f, nil
}

func (c *Console) currentSS(ctx context.Context) (ssForm, error) {
	g, err := c.cat.SiteServerPolicy(ctx, "")
	if err != nil {
		return ssForm{}, err
	}
	v := fieldValues(g.Settings, siteServerFields)
	return ssForm{Version: g.Version, UpdatedAt: g.UpdatedAt, Poll: v["poll_interval_seconds"],
		Concurrency: v["download_concurrency"], Bandwidth: v["download_bandwidth"], Errors: map[string]string{}}, nil
}

// addServers lists the enrolled servers of each OS beside its path field.
func (c *Console) addServers(ctx context.Context, f *psForm, selected url.Values) error {
	list, err := c.cat.ListServers(ctx)
	if err != nil {
		return err
	}
	for i := range f.Locations {
		l := &f.Locations[i]
		for _, s := range list {
			if s.OS == l.OS {
				l.Servers = append(l.Servers, s.Name)
			}
		}
		l.CheckServer = selected.Get("check_server_" + l.OS)
	}
	return nil
}

func (c *Console) settings(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	ps, err := c.currentPS(ctx)
	if err != nil {
		return err
	}
	ss, err := c.currentSS(ctx)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if err := c.addServers(ctx, &ps, q); err != nil {
		return err
	}
	if which, server, task := q.Get("check_os"), q.Get("check_server"), q.Get("check_task"); task != "" {
		for i := range ps.Locations {
			l := &ps.Locations[i]
			if l.OS != which {
				continue
			}
			// Show the path that was checked, which may not be saved.
			l.Custom, l.Path, l.CheckServer = true, q.Get("check_path"), server
			l.Check = c.checkViewFor(ctx, server, task, l.Path)
		}
	}
	c.renderSettings(w, r, sess, http.StatusOK, settingsPage{PS: ps, SS: ss})
	return nil
}

func (c *Console) renderSettings(w http.ResponseWriter, r *http.Request, sess *session, code int, p settingsPage) {
	c.render(w, r, sess, code, "settings", view{Title: "Site Server Settings", Nav: "settings", Page: p})
}

func (c *Console) checkViewFor(ctx context.Context, server, id, path string) *checkView {
	v := &checkView{Server: server, Path: path, TaskID: id,
		StatusURL: "/servers/" + url.PathEscape(server) + "/tasks/" + url.PathEscape(id) + "/status.json"}
	t, err := c.cat.TaskStatus(ctx, server, id)
	if err != nil {
		v.Done, v.Error = true, "The check is unknown: "+err.Error()
		return v
	}
	v.Done, v.Error, v.Plan, v.Path = !t.DoneAt.IsZero(), t.Error, t.Plan, t.Path
	if t.Plan != nil {
		v.Words = statusWords(t.Plan.Status)
	}
	return v
}

func (c *Console) taskStatusJSON(r *http.Request) (any, error) {
	t, err := c.cat.TaskStatus(r.Context(), r.PathValue("name"), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return struct {
		Done bool `json:"done"`
	}{!t.DoneAt.IsZero()}, nil
}

// psFromForm reads the Package Server Settings form as submitted.
func psFromForm(form url.Values) psForm {
	f := psForm{Locations: newLocations(), Errors: map[string]string{},
		AllFixedDrives: form.Get("all_fixed_drives") != "", RelocationMode: form.Get("relocation_mode")}
	f.Version, _ = strconv.ParseInt(form.Get("version"), 10, 64)
	for i := range f.Locations {
		l := &f.Locations[i]
		l.Custom = form.Get(l.OS+"_mode") == "custom"
		l.Path = strings.TrimSpace(form.Get(l.OS + "_path"))
	}
	return f
}

func (c *Console) savePackageServer(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	f := psFromForm(r.PostForm)
	if err := c.addServers(ctx, &f, r.PostForm); err != nil {
		return err
	}
	show := func(msg string) error {
		f.Error = msg
		ss, err := c.currentSS(ctx)
		if err != nil {
			return err
		}
		c.renderSettings(w, r, sess, http.StatusBadRequest, settingsPage{PS: f, SS: ss})
		return nil
	}
	values := map[string]any{"all_fixed_drives": f.AllFixedDrives, "relocation_mode": f.RelocationMode}
	for _, l := range f.Locations {
		switch {
		case !l.Custom:
			values[l.Name] = api.LocationDefault
		case l.Path == "":
			f.Errors[l.Name] = "enter the path of the custom location, or choose Default"
		case l.Path == api.LocationDefault:
			f.Errors[l.Name] = `"default" is not a path: choose Default instead`
		default:
			values[l.Name] = l.Path
		}
	}
	if len(f.Errors) > 0 {
		return show("Nothing was saved: correct the fields marked below.")
	}
	return saveSettings(c, w, r, sess, settingsSave[api.PackageServerSettings]{
		title: "Package Server Settings", kind: api.PolicyPackageServer, back: "/settings", specs: packageServerFields,
		note: "Package Servers receive them within a second; a new storage location starts a relocation on each one it applies to.",
		current: func(ctx context.Context) (int64, api.PackageServerSettings, error) {
			p, err := c.cat.PackageServerPolicy(ctx, "")
			return p.Version, p.Settings, err
		},
		save: func(ctx context.Context, in api.PackageServerSettings) (int64, error) {
			p, err := c.cat.SetPackageServerPolicy(ctx, "", in)
			return p.Version, err
		},
	}, values, &f.Version, f.Errors, show)
}

func (c *Console) saveSiteServer(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	form := r.PostForm
	f := ssForm{Poll: form.Get("poll_interval_seconds"), Concurrency: form.Get("download_concurrency"),
		Bandwidth: form.Get("download_bandwidth"), Errors: map[string]string{}}
	f.Version, _ = strconv.ParseInt(form.Get("version"), 10, 64)
	show := func(msg string) error {
		f.Error = msg
		ps, err := c.currentPS(ctx)
		if err != nil {
			return err
		}
		if err := c.addServers(ctx, &ps, nil); err != nil {
			return err
		}
		c.renderSettings(w, r, sess, http.StatusBadRequest, settingsPage{PS: ps, SS: f})
		return nil
	}
	values := map[string]any{}
	for _, spec := range siteServerFields {
		v, err := parseField(spec, form.Get(spec.Name))
		if err != nil {
			f.Errors[spec.Name] = err.Error()
			continue
		}
		values[spec.Name] = v
	}
	if len(f.Errors) > 0 {
		return show("Nothing was saved: correct the fields marked below.")
	}
	return saveSettings(c, w, r, sess, settingsSave[api.SiteServerSettings]{
		title: "Global Site Server Settings", kind: api.PolicySiteServer, back: "/settings#site-server", specs: siteServerFields,
		note: "Package Servers receive them within a second.",
		current: func(ctx context.Context) (int64, api.SiteServerSettings, error) {
			p, err := c.cat.SiteServerPolicy(ctx, "")
			return p.Version, p.Settings, err
		},
		save: func(ctx context.Context, in api.SiteServerSettings) (int64, error) {
			p, err := c.cat.SetSiteServerPolicy(ctx, "", in)
			return p.Version, err
		},
	}, values, &f.Version, f.Errors, show)
}

// settingsSave is what the two settings forms differ in once their fields
// are parsed.
type settingsSave[S any] struct {
	title, kind, back, note string
	specs                   []fieldSpec
	current                 func(context.Context) (int64, S, error)
	save                    func(context.Context, S) (int64, error)
}

// saveSettings is the part both settings forms share: refuse a form opened
// before someone else's save, keep only the fields that changed, save
// them, and put the catalog's field errors back next to their fields.
// version is the form's (updated on a stale form), errs its field errors,
// show renders the form again with a message.
func saveSettings[S any](c *Console, w http.ResponseWriter, r *http.Request, sess *session, p settingsSave[S],
	values map[string]any, version *int64, errs map[string]string, show func(string) error) error {
	ctx := r.Context()
	curVersion, cur, err := p.current(ctx)
	if err != nil {
		return err
	}
	if *version != curVersion {
		*version = curVersion
		return show(fmt.Sprintf("Nothing was saved: someone changed the %s while you edited them (now version %d: %s). "+
			"Check your values against these and save again.", p.title, curVersion, describe(cur, p.specs)))
	}
	changed := changedFields(values, fieldValues(cur, p.specs), p.specs)
	if len(changed) == 0 {
		c.addFlash(r, sess, "info", "No changes to save in "+p.title+".")
		redirect(w, r, p.back)
		return nil
	}
	in, err := settingsFrom[S](changed)
	if err != nil {
		return err
	}
	saved, err := p.save(ctx, in)
	if errors.Is(err, wharf.ErrInvalid) {
		byField, rest := fieldErrors(err.Error(), p.specs)
		for name, msg := range byField {
			errs[name] = msg
		}
		if rest == "" {
			rest = "Nothing was saved: correct the fields marked below."
		}
		return show(rest)
	}
	if err != nil {
		return err
	}
	c.log.Info("policy saved", "kind", p.kind, "version", saved, "fields", len(changed), "user", sess.user)
	c.addFlash(r, sess, "ok", fmt.Sprintf("Saved %s (version %d). %s", p.title, saved, p.note))
	redirect(w, r, p.back)
	return nil
}

// changedFields keeps the values whose form text differs from the
// current one.
func changedFields(values map[string]any, current map[string]string, specs []fieldSpec) map[string]any {
	out := map[string]any{}
	for _, spec := range specs {
		v, ok := values[spec.Name]
		if !ok {
			continue
		}
		text := fmt.Sprint(v)
		switch spec.Kind {
		case "bool":
			text = yesNo(v.(bool))
		case "rate":
			text = rateInput(v.(int64))
		}
		if text != current[spec.Name] {
			out[spec.Name] = v
		}
	}
	return out
}

// describe lists a policy's values in words, for messages.
func describe(settings any, specs []fieldSpec) string {
	v := fieldValues(settings, specs)
	parts := make([]string, 0, len(specs))
	for _, spec := range specs {
		parts = append(parts, fmt.Sprintf("%s %s", strings.ToLower(spec.Label), displayValue(spec, v[spec.Name])))
	}
	return strings.Join(parts, ", ")
}

// checkLocation asks a Package Server to evaluate the path typed next to
// one of the location fields (SPEC §6.5), through a check-location task.
// Nothing is saved.
func (c *Console) checkLocation(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	f := psFromForm(r.PostForm)
	if err := c.addServers(ctx, &f, r.PostForm); err != nil {
		return err
	}
	cur, err := c.cat.PackageServerPolicy(ctx, "")
	if err != nil {
		return err
	}
	f.Version = cur.Version // a check saves nothing; keep the form saveable
	which := r.PostForm.Get("check")
	var l *locationField
	for i := range f.Locations {
		if f.Locations[i].OS == which {
			l = &f.Locations[i]
		}
	}
	if l == nil {
		return wharf.Errorf(wharf.ErrInvalid, "check: %q is not windows or linux", which)
	}
	show := func(msg string) error {
		f.Errors[l.Name] = msg
		f.Error = "Nothing was checked or saved: correct the fields marked below."
		ss, err := c.currentSS(ctx)
		if err != nil {
			return err
		}
		c.renderSettings(w, r, sess, http.StatusBadRequest, settingsPage{PS: f, SS: ss})
		return nil
	}
	switch {
	case l.Path == "":
		return show("enter a path to check")
	case l.CheckServer == "":
		return show(fmt.Sprintf("choose the %s Package Server that should check the path", l.Label))
	}
	t, err := c.cat.CreateTask(ctx, l.CheckServer, api.TaskRequest{Type: api.TaskCheckLocation, Path: l.Path})
	if errors.Is(err, wharf.ErrInvalid) {
		return show(strings.TrimPrefix(err.Error(), "path: "))
	}
	if errors.Is(err, wharf.ErrNotFound) {
		return show(fmt.Sprintf("Package Server %q is not enrolled", l.CheckServer))
	}
	if err != nil {
		return err
	}
	c.log.Info("server task created", "server", t.Server, "task", t.ID, "type", t.Type, "user", sess.user)
	q := url.Values{"check_os": {which}, "check_server": {t.Server}, "check_task": {t.ID}, "check_path": {l.Path}}
	redirect(w, r, "/settings?"+q.Encode()+"#"+l.Name)
	return nil
}
