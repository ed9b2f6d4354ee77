package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

//go:embed assets
var assets embed.FS

// Options tune the console. Zero values mean the defaults.
type Options struct {
	// SessionIdle ends a session unused for this long (default 2 hours).
	SessionIdle time.Duration
	// SessionMaxAge ends a session this long after login (default 12
	// hours).
	SessionMaxAge time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP requests, for
	// an NS behind a proxy that terminates TLS. Requests that come over TLS
	// get Secure cookies anyway.
	SecureCookies bool
	// LoginBurst is how many login attempts one client IP may make at once
	// (default 10); it gets one more every LoginEvery (default 6 s).
	LoginBurst int
	LoginEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Limits on what a form may send.
const maxFormBytes = 64 << 10

// Console serves the web console. Build it with New and mount it with
// Register.
type Console struct {
	cat      *catalog.Catalog
	users    *catalog.Users
	log      *slog.Logger
	opts     Options
	sessions *sessionStore
	limiter  *loginLimiter
	cop      *http.CrossOriginProtection
	pages    map[string]*template.Template
	static   map[string]staticFile
}

type staticFile struct {
	data  []byte
	ctype string
	etag  string
}

// pageNames are the templates in assets/templates, besides layout.html.
var pageNames = []string{"login", "error", "dashboard", "packages", "package", "servers", "server", "settings", "alerts"}

// New returns the console over a catalog, its console users and the store
// of sessions and login limits (the NS's SQL store, so every replica shares
// them). It panics when the embedded
// templates do not parse, which the package's tests would have caught.
func New(cat *catalog.Catalog, users *catalog.Users, sessions SessionStore, log *slog.Logger, opts Options) *Console {
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = 2 * time.Hour
	}
	if opts.SessionMaxAge <= 0 {
		opts.SessionMaxAge = 12 * time.Hour
	}
	if opts.LoginBurst <= 0 {
		opts.LoginBurst = 10
	}
	if opts.LoginEvery <= 0 {
		opts.LoginEvery = 6 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Console{
		cat:      cat,
		users:    users,
		log:      log.With("component", "console"),
		opts:     opts,
		sessions: newSessionStore(sessions, opts.SessionIdle, opts.SessionMaxAge, opts.Now),
		limiter:  newLoginLimiter(sessions, opts.LoginBurst, opts.LoginEvery, opts.Now),
		cop:      http.NewCrossOriginProtection(),
		pages:    map[string]*template.Template{},
		static:   map[string]staticFile{},
	}
	for _, name := range pageNames {
		c.pages[name] = template.Must(template.New(name).Funcs(funcs(opts.Now)).ParseFS(assets,
			"assets/templates/layout.html", "assets/templates/"+name+".html"))
	}
	err := fs.WalkDir(assets, "assets/static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		c.static[path.Base(p)] = staticFile{data: data, ctype: contentType(p), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("console: embedded assets: " + err.Error())
	}
	return c
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// Access says who may use a console route.
type Access string

// Console access rules. The console knows its session cookie only; a
// bearer token of the API means nothing to it.
const (
	// Public: anybody (static files, the login page).
	Public Access = "public"
	// Login: the login form, POSTed with the token of the login page (a
	// cookie and the form's field); without it 403.
	Login Access = "login"
	// Page: a logged-in user; without a session, a redirect (303) to the
	// login page.
	Page Access = "page"
	// JSON: a logged-in user; without a session, 401.
	JSON Access = "json"
	// Action: a POST of a logged-in user with the form's CSRF token (and a
	// same-origin request); without a session a redirect to the login
	// page, without the token 403, and nothing changes.
	Action Access = "action"
)

// Route is one route of the console and who may use it.
type Route struct {
	Pattern string // as http.ServeMux takes it ("GET /packages")
	Access  Access
	h       http.Handler
}

// routes is the console: every route here, with its access rule, and
// nowhere else.
func (c *Console) routes() []Route {
	notFound := c.page(func(w http.ResponseWriter, r *http.Request, _ *session) error {
		return fmt.Errorf("no page at %s: %w", r.URL.Path, wharf.ErrNotFound)
	})
	return []Route{
		{"GET /static/{file}", Public, http.HandlerFunc(c.serveStatic)},
		{"GET /favicon.ico", Public, http.RedirectHandler("/static/favicon.svg", http.StatusMovedPermanently)},
		{"GET /login", Public, http.HandlerFunc(c.loginPage)},
		{"POST /login", Login, http.HandlerFunc(c.login)},
		{"POST /logout", Action, c.action(c.logout)},
		{"GET /{$}", Page, c.page(c.dashboard)},
		{"GET /packages", Page, c.page(c.packages)},
		{"GET /packages/{id}", Page, c.page(c.packageDetail)},
		{"GET /servers", Page, c.page(c.servers)},
		{"GET /servers/{name}", Page, c.page(c.server)},
		{"GET /servers/{name}/status.json", JSON, c.json(c.serverStatusJSON)},
		{"GET /servers/{name}/tasks/{id}/status.json", JSON, c.json(c.taskStatusJSON)},
		{"POST /servers/{name}/retry", Action, c.action(c.retryRelocation)},
		{"POST /servers/{name}/overrides/{kind}", Action, c.action(c.saveOverride)},
		{"POST /servers/{name}/overrides/{kind}/remove", Action, c.action(c.removeOverride)},
		{"GET /settings", Page, c.page(c.settings)},
		{"POST /settings/package-server", Action, c.action(c.savePackageServer)},
		{"POST /settings/site-server", Action, c.action(c.saveSiteServer)},
		{"POST /settings/check", Action, c.action(c.checkLocation)},
		{"GET /alerts", Page, c.page(c.alerts)},
		{"POST /alerts/{id}/read", Action, c.action(c.markAlertRead)},
		{"POST /alerts/read-all", Action, c.action(c.markAllAlertsRead)},
		{"/", Page, notFound},
	}
}

// Routes lists the console's routes and their access rules.
func (c *Console) Routes() []Route {
	list := c.routes()
	for i := range list {
		list[i].h = nil
	}
	return list
}

// Registrar is where routes go: *http.ServeMux.
type Registrar interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the console's routes to mux. It takes "/" and the paths
// below it that the API (under /api/v1/) does not.
func (c *Console) Register(mux Registrar) {
	for _, rt := range c.routes() {
		mux.Handle(rt.Pattern, c.secure(rt.h))
	}
}

// Handler returns the console alone on a fresh mux (tests use it).
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	c.Register(mux)
	return mux
}

// csp allows the console's own scripts, styles and requests, and nothing
// inline.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the security headers of every console response.
func (c *Console) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if hd.Get("Cache-Control") == "" {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := c.static[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.ctype)
	w.Header().Set("ETag", f.etag)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

// pageFunc is a page handler for a logged-in user; it returns its error for
// one place to answer.
type pageFunc func(w http.ResponseWriter, r *http.Request, sess *session) error

// page requires a session: without one it redirects to the login page.
func (c *Console) page(h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := c.session(r)
		if sess == nil {
			c.toLogin(w, r)
			return
		}
		if err := h(w, r, sess); err != nil {
			c.fail(w, r, sess, err)
		}
	})
}

// action is page for a POST that changes something: it also checks the
// request's origin and the form's CSRF token, and refuses with 403 (and
// changes nothing) when either is wrong.
func (c *Console) action(h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := c.session(r)
		if sess == nil {
			c.toLogin(w, r)
			return
		}
		if err := c.checkForm(w, r, sess.csrf); err != nil {
			c.fail(w, r, sess, err)
			return
		}
		if err := h(w, r, sess); err != nil {
			c.fail(w, r, sess, err)
		}
	})
}

// checkForm parses a POSTed form (bounded) and checks its origin and its
// CSRF token against want.
func (c *Console) checkForm(w http.ResponseWriter, r *http.Request, want string) error {
	if err := c.cop.Check(r); err != nil {
		return wharf.Errorf(wharf.ErrForbidden, "cross-origin request refused: %v", err)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return wharf.Errorf(wharf.ErrInvalid, "unreadable form: %v", err)
	}
	if !tokenEqual(r.PostForm.Get("csrf"), want) {
		return wharf.Errorf(wharf.ErrForbidden, "the form's security token is missing or stale; reload the page and try again")
	}
	return nil
}

// json serves a small JSON endpoint for the page scripts; without a
// session it answers 401.
func (c *Console) json(h func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		write := func(code int, v any) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(v)
		}
		if c.session(r) == nil {
			write(http.StatusUnauthorized, map[string]string{"error": "not logged in"})
			return
		}
		v, err := h(r)
		if err != nil {
			code, msg := c.status(r, err)
			write(code, map[string]string{"error": msg})
			return
		}
		write(http.StatusOK, v)
	})
}

// session returns the request's live session, or nil. A user's session
// ends when the user is removed or their password changes.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	sess, err := c.sessions.get(r.Context(), ck.Value)
	if err != nil {
		c.log.Error("read console session", "err", err)
		return nil
	}
	if sess == nil || sess.byToken {
		return sess
	}
	h, err := c.users.UserPasswordHash(r.Context(), sess.user)
	if err != nil && !errors.Is(err, wharf.ErrNotFound) {
		c.log.Error("check console user", "user", sess.user, "err", err)
		return nil
	}
	if err != nil || h != sess.pwHash {
		if err := c.sessions.delete(r.Context(), sess); err != nil {
			c.log.Error("end console session", "user", sess.user, "err", err)
		}
		return nil
	}
	return sess
}

// addFlash keeps a message for the session's next page.
func (c *Console) addFlash(r *http.Request, sess *session, level, text string) {
	if err := c.sessions.addFlash(r.Context(), sess, level, text); err != nil {
		c.log.Error("keep a console message", "user", sess.user, "err", err)
	}
}

// toLogin sends a visitor without a session to the login page, to come
// back to this page after.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	next := "/"
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
}

// safeNext returns next when it is a path on this site, else "/".
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		u.Scheme != "" || u.Host != "" || strings.HasPrefix(u.Path, "/login") || strings.HasPrefix(u.Path, "/logout") ||
		strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || c.opts.SecureCookies, MaxAge: maxAge})
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string // the active navigation item
	User    string
	ByToken bool
	CSRF    string
	Flashes []flash
	Unread  int // unread alerts, for the navigation badge
	Page    any
}

// render executes a page template into a buffer and sends it with code.
func (c *Console) render(w http.ResponseWriter, r *http.Request, sess *session, code int, name string, v view) {
	if sess != nil {
		v.User, v.ByToken, v.CSRF = sess.user, sess.byToken, sess.csrf
		var err error
		if v.Flashes, err = c.sessions.takeFlashes(r.Context(), sess); err != nil {
			c.log.Error("read console messages", "user", sess.user, "err", err)
		}
		if list, err := c.cat.Alerts(r.Context(), true); err == nil {
			v.Unread = len(list.Alerts)
		}
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error: the page could not be rendered; the notification server's log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// status maps an error to an HTTP status (api.HTTPStatus, the one mapping
// the API uses too) and the message to show.
func (c *Console) status(r *http.Request, err error) (int, string) {
	var mb *http.MaxBytesError
	code := api.HTTPStatus(err)
	switch {
	case errors.As(err, &mb):
		return code, "the form is too large"
	case code == api.StatusCanceled:
		return code, "request canceled"
	case code < 500:
		return code, err.Error()
	}
	c.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "internal error; the notification server's log has the details"
}

// errorPage is the page of a refused or failed request.
type errorPage struct {
	Code    int
	Status  string
	Message string
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	code, msg := c.status(r, err)
	if code < 500 {
		c.log.Info("console request refused", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	c.render(w, r, sess, code, "error", view{Title: http.StatusText(code),
		Page: errorPage{Code: code, Status: http.StatusText(code), Message: msg}})
}

// redirect answers a successful POST: see the page at to.
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}
