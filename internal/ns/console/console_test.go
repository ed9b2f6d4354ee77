package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ns/blobs"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/ns/console"
	"github.com/wharf-project/wharf/internal/ns/httpapi"
	"github.com/wharf-project/wharf/internal/ns/notify"
	"github.com/wharf-project/wharf/internal/ns/sqlstore"
	"github.com/wharf-project/wharf/internal/wharf"
)

// fixture is an NS handler (API and console on one mux, as ns.Handler
// mounts them) over a fresh SQLite catalog, with one enrolled server.
type fixture struct {
	t      *testing.T
	url    string
	cat    *catalog.Catalog
	users  *catalog.Users
	token  string
	server catalog.Server // "ps-lyon", linux
}

func newFixture(t *testing.T, opts console.Options) *fixture {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	bs, err := blobs.Open(dir + "/blobs")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cat := catalog.New(store, bs, notify.NewLocal(), time.Now, log)
	users := catalog.NewUsers(store, time.Now)
	tok, _, err := cat.InitAdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	httpapi.New(cat, bs, log, httpapi.Options{}).Register(mux)
	console.New(cat, users, store, log, opts).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	et, err := cat.MintEnrollToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cat.Enroll(ctx, api.EnrollRequest{Token: et.Token, Name: "ps-lyon", OS: "linux", URL: "http://ps-lyon:8081"})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := cat.AuthenticateServer(ctx, e.Credential)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, url: srv.URL, cat: cat, users: users, token: tok, server: ps}
}

// client is one browser: a cookie jar, redirects not followed.
type client struct {
	f  *fixture
	hc *http.Client
}

func (f *fixture) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{f: f, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type response struct {
	code     int
	body     string
	location string
	header   http.Header
}

func (c *client) do(req *http.Request) response {
	c.f.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, string(body), resp.Header.Get("Location"), resp.Header}
}

func (c *client) get(path string) response {
	c.f.t.Helper()
	req, _ := http.NewRequest("GET", c.f.url+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values) response {
	c.f.t.Helper()
	req, _ := http.NewRequest("POST", c.f.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf loads a page and returns the CSRF token of its forms.
func (c *client) csrf(path string) string {
	c.f.t.Helper()
	r := c.get(path)
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		c.f.t.Fatalf("GET %s: %d, no CSRF field in the page", path, r.code)
	}
	return m[1]
}

func (c *client) login(user, secret string) response {
	c.f.t.Helper()
	return c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "user": {user}, "secret": {secret}})
}

// loggedIn returns a client with an admin-token session.
func (f *fixture) loggedIn() *client {
	f.t.Helper()
	c := f.client()
	if r := c.login("", f.token); r.code != http.StatusSeeOther {
		f.t.Fatalf("login: %d %s", r.code, r.body)
	}
	return c
}

func (f *fixture) psPolicy() api.PackageServerPolicy {
	f.t.Helper()
	p, err := f.cat.PackageServerPolicy(context.Background(), "")
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func TestPagesNeedASession(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.client()
	for _, path := range []string{"/", "/packages", "/packages/x", "/servers", "/servers/ps-lyon", "/settings", "/alerts", "/nowhere"} {
		r := c.get(path)
		if r.code != http.StatusSeeOther || r.location != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s without a session: %d to %q, want 303 to the login page", path, r.code, r.location)
		}
	}
	for _, path := range []string{"/servers/ps-lyon/status.json", "/servers/ps-lyon/tasks/x/status.json"} {
		if r := c.get(path); r.code != http.StatusUnauthorized || !strings.Contains(r.body, "not logged in") {
			t.Errorf("GET %s without a session: %d %s, want 401", path, r.code, r.body)
		}
	}
	for _, path := range []string{"/settings/package-server", "/settings/site-server", "/servers/ps-lyon/retry",
		"/servers/ps-lyon/overrides/package-server", "/alerts/read-all", "/logout"} {
		r := c.post(path, url.Values{"linux_mode": {"custom"}, "linux_path": {"/srv/x"}, "windows_mode": {"default"}})
		if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login") {
			t.Errorf("POST %s without a session: %d to %q, want 303 to the login page", path, r.code, r.location)
		}
	}
	if p := f.psPolicy(); p.Version != 0 {
		t.Errorf("a POST without a session changed the policy: %+v", p)
	}
	// The API is still the API.
	req, _ := http.NewRequest("GET", f.url+"/api/v1/servers", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	if r := c.do(req); r.code != 200 || !strings.Contains(r.body, `"ps-lyon"`) {
		t.Errorf("API under the console: %d %s", r.code, r.body)
	}
	if r := c.get("/api/v1/nope"); r.code != 404 || !strings.Contains(r.body, "no such API route") {
		t.Errorf("unknown API route: %d %s", r.code, r.body)
	}
}

func TestLoginLogout(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.client()

	r := c.login("", "wharf-admin-wrong")
	if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong admin token.") {
		t.Fatalf("wrong token: %d, want 401 and a message\n%s", r.code, r.body)
	}
	// The login form's own CSRF token is required.
	if r := c.post("/login", url.Values{"secret": {f.token}}); r.code != http.StatusForbidden {
		t.Errorf("login without its CSRF token: %d, want 403", r.code)
	}
	if r := c.get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("refused logins opened a session: %d", r.code)
	}

	tok := c.csrf("/login?next=%2Fsettings")
	r = c.post("/login", url.Values{"csrf": {tok}, "secret": {f.token}, "next": {"/settings"}})
	if r.code != http.StatusSeeOther || r.location != "/settings" {
		t.Fatalf("login: %d to %q, want 303 to /settings", r.code, r.location)
	}
	var session *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == "wharf_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" || session.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", session)
	}
	page := c.get("/")
	if page.code != http.StatusOK || !strings.Contains(page.body, "Dashboard") {
		t.Fatalf("dashboard: %d", page.code)
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
	} {
		if got := page.header.Get(k); !strings.HasPrefix(got, want) {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if r := c.get("/login"); r.code != http.StatusSeeOther || r.location != "/" {
		t.Errorf("login page with a session: %d to %q, want on to /", r.code, r.location)
	}

	// Logout needs the CSRF token too.
	if r := c.post("/logout", nil); r.code != http.StatusForbidden {
		t.Errorf("logout without the CSRF token: %d, want 403", r.code)
	}
	if r := c.get("/"); r.code != http.StatusOK {
		t.Fatalf("a refused logout ended the session: %d", r.code)
	}
	if r := c.post("/logout", url.Values{"csrf": {c.csrf("/")}}); r.code != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("logout: %d to %q", r.code, r.location)
	}
	if r := c.get("/"); r.code != http.StatusSeeOther {
		t.Errorf("after logout: %d, want 303 to the login page", r.code)
	}
}

func TestSafeNext(t *testing.T) {
	f := newFixture(t, console.Options{})
	for next, want := range map[string]string{
		"/servers/ps-lyon":     "/servers/ps-lyon",
		"/alerts?show=unread":  "/alerts?show=unread",
		"https://evil.example": "/",
		"//evil.example/x":     "/",
		"/\\evil.example":      "/",
		"/login":               "/",
		"javascript:alert(1)":  "/",
	} {
		c := f.client()
		r := c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "secret": {f.token}, "next": {next}})
		if r.code != http.StatusSeeOther || r.location != want {
			t.Errorf("login with next=%q went to %q, want %q", next, r.location, want)
		}
	}
}

func TestUserLogin(t *testing.T) {
	f := newFixture(t, console.Options{})
	ctx := context.Background()
	if _, err := f.users.CreateUser(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	c := f.client()
	if r := c.login("alice", "wrong horse battery"); r.code != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong user name or password.") {
		t.Fatalf("wrong password: %d", r.code)
	}
	if r := c.login("bob", "correct horse battery"); r.code != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", r.code)
	}
	if r := c.login("Alice", "correct horse battery"); r.code != http.StatusSeeOther {
		t.Fatalf("login as alice: %d", r.code)
	}
	if r := c.get("/"); r.code != http.StatusOK || !strings.Contains(r.body, `<span class="who">alice</span>`) {
		t.Fatalf("dashboard as alice: %d", r.code)
	}
	// A new password ends the user's sessions.
	if err := f.users.SetUserPassword(ctx, "alice", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if r := c.get("/"); r.code != http.StatusSeeOther {
		t.Errorf("after a password change the session lives on: %d", r.code)
	}
	if r := c.login("alice", "a brand new password"); r.code != http.StatusSeeOther {
		t.Fatalf("login with the new password: %d", r.code)
	}
	// So does removing the user.
	if err := f.users.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if r := c.get("/"); r.code != http.StatusSeeOther {
		t.Errorf("after removing the user the session lives on: %d", r.code)
	}
}

func TestLoginRateLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := newFixture(t, console.Options{LoginBurst: 3, LoginEvery: time.Minute, Now: clock})
	c := f.client()
	for i := range 3 {
		if r := c.login("", "wrong"); r.code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, r.code)
		}
	}
	r := c.login("", f.token)
	if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "Too many login attempts") {
		t.Fatalf("fourth attempt within the minute: %d (Retry-After %q), want 429", r.code, r.header.Get("Retry-After"))
	}
	now = now.Add(61 * time.Second)
	if r := c.login("", f.token); r.code != http.StatusSeeOther {
		t.Fatalf("after a minute the right token: %d, want 303", r.code)
	}
}

func TestSessionExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := newFixture(t, console.Options{SessionIdle: 10 * time.Minute, SessionMaxAge: time.Hour, Now: clock})
	c := f.loggedIn()
	for range 5 {
		now = now.Add(9 * time.Minute)
		if r := c.get("/"); r.code != http.StatusOK {
			t.Fatalf("a session in use ended after %s: %d", 45*time.Minute, r.code)
		}
	}
	now = now.Add(11 * time.Minute)
	if r := c.get("/"); r.code != http.StatusSeeOther {
		t.Errorf("idle for 11 minutes of 10: %d, want the login page", r.code)
	}
	c = f.loggedIn()
	for i := range 7 {
		now = now.Add(9 * time.Minute)
		r := c.get("/")
		if i < 6 && r.code != http.StatusOK || i == 6 && r.code != http.StatusSeeOther {
			t.Errorf("%d minutes after login: %d", (i+1)*9, r.code)
		}
	}
}

func TestFormsNeedTheCSRFToken(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	good := c.csrf("/settings")
	form := url.Values{"version": {"0"}, "windows_mode": {"default"}, "linux_mode": {"custom"}, "linux_path": {"/srv/wharf"},
		"relocation_mode": {"online"}}
	tests := []struct{ name, token string }{
		{"none", ""},
		{"one byte changed", tamper(good)},
		{"another session's", f.loggedIn().csrf("/settings")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.token == good {
				t.Fatalf("the %s token equals the session's", tt.name)
			}
			form.Set("csrf", tt.token)
			if r := c.post("/settings/package-server", form); r.code != http.StatusForbidden || !strings.Contains(r.body, "security token") {
				t.Errorf("%s CSRF token: %d, want 403", tt.name, r.code)
			}
		})
	}
	form.Set("csrf", good)
	req, _ := http.NewRequest("POST", f.url+"/settings/package-server", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := c.do(req); r.code != http.StatusForbidden {
		t.Errorf("cross-site POST with a good token: %d, want 403", r.code)
	}
	if p := f.psPolicy(); p.Version != 0 {
		t.Fatalf("refused forms changed the policy: %+v", p)
	}
	if r := c.post("/settings/package-server", form); r.code != http.StatusSeeOther {
		t.Fatalf("the same form with the token: %d\n%s", r.code, r.body)
	}
	if p := f.psPolicy(); p.Version != 1 || *p.Settings.LinuxLocation != "/srv/wharf" {
		t.Fatalf("policy after the good form: %+v", p)
	}
}

// tamper returns tok with its first byte changed to a different byte of
// the same alphabet, so the result never equals tok.
func tamper(tok string) string {
	b := []byte(tok)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// fieldError returns the text of the error shown next to a field.
func fieldError(body, field string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(field) + `-error">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&#34;", `"`)
}

func TestPackageServerSettingsForm(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	send := func(linuxMode, linuxPath, windowsMode, windowsPath string, version int64) response {
		t.Helper()
		return c.post("/settings/package-server", url.Values{"csrf": {c.csrf("/settings")}, "version": {strconv.FormatInt(version, 10)},
			"linux_mode": {linuxMode}, "linux_path": {linuxPath}, "windows_mode": {windowsMode}, "windows_path": {windowsPath},
			"relocation_mode": {"online"}})
	}
	for _, bad := range []struct {
		linuxMode, linuxPath, windowsMode, windowsPath string
		field, want                                    string
	}{
		{"custom", "relative/store", "default", "", "linux_location", `"relative/store" is not an absolute Linux path`},
		{"custom", "/srv/../etc", "default", "", "linux_location", "is not clean"},
		{"custom", "", "default", "", "linux_location", "enter the path of the custom location"},
		{"custom", "default", "default", "", "linux_location", "choose Default instead"},
		{"default", "", "custom", `\\server\share`, "windows_location", "network share"},
		// Known folders (SPEC §6.1.4), refused at save time, each by its OS's rules.
		{"custom", "/etc/wharf", "default", "", "linux_location", "/etc/wharf is the system folder /etc or below it"},
		{"custom", "/var/lib/wharf", "default", "", "linux_location", "system folder /var/lib"},
		{"default", "", "custom", `C:\Windows\Wharf`, "windows_location", `C:\Windows\Wharf is the system folder C:\Windows or below it`},
		{"default", "", "custom", `c:\program files\wharf\store`, "windows_location", `system folder C:\Program Files`},
	} {
		r := send(bad.linuxMode, bad.linuxPath, bad.windowsMode, bad.windowsPath, 0)
		if r.code != http.StatusBadRequest {
			t.Errorf("%+v: %d, want 400", bad, r.code)
			continue
		}
		if got := fieldError(r.body, bad.field); !strings.Contains(got, bad.want) {
			t.Errorf("%+v: error next to %s is %q, want %q", bad, bad.field, got, bad.want)
		}
		if !strings.Contains(r.body, "Nothing was saved") {
			t.Errorf("%+v: no page-level message", bad)
		}
	}
	// Both fields wrong at once: both errors, each next to its field.
	r := send("custom", "rel", "custom", "rel", 0)
	if !strings.Contains(fieldError(r.body, "linux_location"), "not an absolute Linux path") ||
		!strings.Contains(fieldError(r.body, "windows_location"), "not an absolute Windows path") {
		t.Errorf("two bad paths: errors %q and %q", fieldError(r.body, "linux_location"), fieldError(r.body, "windows_location"))
	}
	if !strings.Contains(r.body, `value="rel"`) {
		t.Error("the form lost what was typed")
	}
	if p := f.psPolicy(); p.Version != 0 || *p.Settings.LinuxLocation != "default" {
		t.Fatalf("refused forms changed the policy: %+v", p)
	}

	r = send("custom", "/srv/wharf", "default", "", 0)
	if r.code != http.StatusSeeOther || r.location != "/settings" {
		t.Fatalf("good form: %d to %q\n%s", r.code, r.location, r.body)
	}
	p := f.psPolicy()
	if p.Version != 1 || *p.Settings.LinuxLocation != "/srv/wharf" || *p.Settings.WindowsLocation != "default" {
		t.Fatalf("policy after the good form: %+v", p)
	}
	if page := c.get("/settings"); !strings.Contains(page.body, "Saved Package Server Settings (version 1)") ||
		!strings.Contains(page.body, `value="/srv/wharf"`) {
		t.Errorf("settings page after saving lacks the message or the value")
	}
	// The same form again changes nothing.
	if r := send("custom", "/srv/wharf", "default", "", 1); r.code != http.StatusSeeOther || f.psPolicy().Version != 1 {
		t.Errorf("an unchanged form bumped the version: %d, version %d", r.code, f.psPolicy().Version)
	}
	// A form opened before someone else's change is not saved over it.
	r = send("default", "", "default", "", 0)
	if r.code != http.StatusBadRequest || !strings.Contains(r.body, "someone changed the Package Server Settings") {
		t.Errorf("stale form: %d", r.code)
	}
	if p := f.psPolicy(); p.Version != 1 || *p.Settings.LinuxLocation != "/srv/wharf" {
		t.Errorf("a stale form changed the policy: %+v", p)
	}
}

func jsonString(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

func TestSiteServerSettingsForm(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	send := func(poll, conc, bw string) response {
		t.Helper()
		return c.post("/settings/site-server", url.Values{"csrf": {c.csrf("/settings")}, "version": {"0"},
			"poll_interval_seconds": {poll}, "download_concurrency": {conc}, "download_bandwidth": {bw}})
	}
	r := send("30", "100", "fast")
	if r.code != http.StatusBadRequest || !strings.Contains(fieldError(r.body, "download_bandwidth"), "want a size per second") {
		t.Fatalf("bad bandwidth: %d, error %q", r.code, fieldError(r.body, "download_bandwidth"))
	}
	r = send("30", "100", "20MiB/s")
	if r.code != http.StatusBadRequest || !strings.Contains(fieldError(r.body, "download_concurrency"), "100, want 1 to 64") {
		t.Fatalf("bad concurrency: %d, error %q", r.code, fieldError(r.body, "download_concurrency"))
	}
	r = send("x", "4", "0")
	if !strings.Contains(fieldError(r.body, "poll_interval_seconds"), "not a whole number") {
		t.Errorf("bad poll interval: error %q", fieldError(r.body, "poll_interval_seconds"))
	}
	if p, _ := f.cat.SiteServerPolicy(context.Background(), ""); p.Version != 0 {
		t.Fatalf("refused forms changed the policy: %+v", p)
	}
	if r := send("30", "8", "20MiB/s"); r.code != http.StatusSeeOther {
		t.Fatalf("good form: %d\n%s", r.code, r.body)
	}
	p, _ := f.cat.SiteServerPolicy(context.Background(), "")
	if p.Version != 1 || *p.Settings.DownloadConcurrency != 8 || *p.Settings.DownloadBandwidth != 20<<20 || *p.Settings.PollIntervalSeconds != 30 {
		t.Fatalf("policy after the good form: %+v", p.Settings)
	}
	if page := c.get("/settings"); !strings.Contains(page.body, `value="20MiB/s"`) {
		t.Error("the settings page does not show the saved bandwidth")
	}
}

func TestOverrideEditor(t *testing.T) {
	f := newFixture(t, console.Options{})
	ctx := context.Background()
	c := f.loggedIn()
	send := func(kind string, fields map[string]string) response {
		t.Helper()
		form := url.Values{"csrf": {c.csrf("/servers/ps-lyon")}}
		for k, v := range fields {
			form.Set("set_"+k, "1")
			form.Set(k, v)
		}
		return c.post("/servers/ps-lyon/overrides/"+kind, form)
	}
	effective := func() api.EffectivePolicy {
		t.Helper()
		e, err := f.cat.EffectivePolicy(ctx, "ps-lyon")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	r := send("package-server", map[string]string{"linux_location": "srv/rel", "relocation_mode": "exclusive"})
	if r.code != http.StatusBadRequest || !strings.Contains(fieldError(r.body, "ov_linux_location"), "not an absolute Linux path") {
		t.Fatalf("bad override: %d, error %q", r.code, fieldError(r.body, "ov_linux_location"))
	}
	if e := effective(); len(e.Overridden) != 0 {
		t.Fatalf("a refused override changed something: %v", e.Overridden)
	}
	r = send("package-server", map[string]string{"linux_location": "/data/wharf", "relocation_mode": "exclusive"})
	if r.code != http.StatusSeeOther {
		t.Fatalf("override: %d\n%s", r.code, r.body)
	}
	if e := effective(); *e.PackageServer.LinuxLocation != "/data/wharf" || *e.PackageServer.RelocationMode != "exclusive" || len(e.Overridden) != 2 {
		t.Fatalf("effective after override: %+v %v", e.PackageServer, e.Overridden)
	}
	// Clearing the mode while a different location stays overridden would
	// briefly send the global location: refused.
	r = send("package-server", map[string]string{"linux_location": "/data/wharf"})
	if r.code != http.StatusBadRequest || !strings.Contains(r.body, "briefly send ps-lyon the global storage location") {
		t.Fatalf("clearing one field next to a location override: %d", r.code)
	}
	// Site settings: clearing one field of two is done.
	if r := send("site-server", map[string]string{"download_concurrency": "2", "download_bandwidth": "5MB/s"}); r.code != http.StatusSeeOther {
		t.Fatalf("site override: %d\n%s", r.code, r.body)
	}
	if r := send("site-server", map[string]string{"download_bandwidth": "5MB/s"}); r.code != http.StatusSeeOther {
		t.Fatalf("clear one site field: %d\n%s", r.code, r.body)
	}
	o, err := f.cat.SiteServerPolicy(ctx, "ps-lyon")
	if err != nil || o.Settings.DownloadConcurrency != nil || *o.Settings.DownloadBandwidth != 5e6 {
		t.Fatalf("site override after clearing concurrency: %+v, %v", o.Settings, err)
	}
	// Unticking everything removes the override; so does the button.
	if r := send("site-server", nil); r.code != http.StatusSeeOther {
		t.Fatalf("clear the site override: %d", r.code)
	}
	if _, err := f.cat.SiteServerPolicy(ctx, "ps-lyon"); err == nil {
		t.Error("the site override is still there")
	}
	if r := c.post("/servers/ps-lyon/overrides/package-server/remove", url.Values{"csrf": {c.csrf("/")}}); r.code != http.StatusSeeOther {
		t.Fatalf("remove override: %d", r.code)
	}
	if e := effective(); len(e.Overridden) != 0 || *e.PackageServer.LinuxLocation != "default" {
		t.Fatalf("after removing the override: %+v %v", e.PackageServer, e.Overridden)
	}
	if r := c.post("/servers/ps-lyon/overrides/bogus", url.Values{"csrf": {c.csrf("/")}}); r.code != http.StatusNotFound {
		t.Errorf("unknown kind: %d, want 404", r.code)
	}
}

func (f *fixture) report(ev api.LocationStatus) {
	f.t.Helper()
	if err := f.cat.ReportLocation(context.Background(), f.server, ev); err != nil {
		f.t.Fatal(err)
	}
}

func TestResourceManager(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	page := c.get("/servers/ps-lyon")
	if page.code != 200 || !strings.Contains(page.body, "has not reported a relocation attempt") {
		t.Fatalf("resource manager before events: %d", page.code)
	}
	status := func() map[string]any {
		t.Helper()
		r := c.get("/servers/ps-lyon/status.json")
		var v map[string]any
		if err := json.Unmarshal([]byte(r.body), &v); err != nil || r.code != 200 {
			t.Fatalf("status.json: %d %s", r.code, r.body)
		}
		return v
	}
	if s := status(); s["phase"] != "none" {
		t.Errorf("phase before events: %v", s["phase"])
	}

	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ev := api.LocationStatus{StoragePath: "/srv/<b>wharf</b>", VolumeTotalMB: 2 << 20, VolumeFreeMB: 900, PSUsedMB: 1536,
		LastAttempt: at, LastStatus: 0x004, VolumeRequiredMB: 2048, AttemptsDone: 1, MaxAttempts: 3,
		Progress: &api.RelocationProgress{BytesDone: 3 << 30, BytesTotal: 4 << 30, PackagesDone: 6, PackagesTotal: 8, ETASeconds: 125}}
	f.report(ev)
	s := status()
	if s["phase"] != "running" || !strings.Contains(jsonString(s["progress"]), `"percent":75`) {
		t.Errorf("status while running: %v", s)
	}
	page = c.get("/servers/ps-lyon")
	for _, want := range []string{`id="progress-bar" max="100" value="75"`, "6 of 8 packages · 3 GiB of 4 GiB · about 2 min 5 s left",
		"2 TiB", "900 MiB", "1.5 GiB", "2 GiB", "1 done of 3 at most", "In progress", "/srv/&lt;b&gt;wharf&lt;/b&gt;"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("resource manager while running lacks %q", want)
		}
	}
	if strings.Contains(page.body, "<b>wharf</b>") {
		t.Error("the storage path is not escaped")
	}

	ev.Progress, ev.LastStatus, ev.Message = nil, 0x202, "Some of the files have not been moved to the new location."
	ev.AttemptsDone = 3
	ev.Packages = []api.RelocationPackage{{PackageID: "0b6f0b0e-0000-4000-8000-000000000001", State: "linked", Reason: "file held"}}
	f.report(ev)
	if s := status(); s["phase"] == "running" || s["phase"] == "none" {
		t.Errorf("phase after the attempt: %v", s["phase"])
	}
	page = c.get("/servers/ps-lyon")
	for _, want := range []string{"0x202", "Warning: some packages stay behind links", "Automatic retries are exhausted",
		"3 done of 3 at most", "Linked (left at the old place)", "file held", "Retries exhausted"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("resource manager after the warning lacks %q", want)
		}
	}

	r := c.post("/servers/ps-lyon/retry", url.Values{"csrf": {c.csrf("/servers/ps-lyon")}})
	if r.code != http.StatusSeeOther || r.location != "/servers/ps-lyon" {
		t.Fatalf("retry: %d to %q", r.code, r.location)
	}
	m := regexp.MustCompile(`as task ([0-9a-f-]{36})\.`).FindStringSubmatch(c.get("/servers/ps-lyon").body)
	if m == nil {
		t.Fatal("no task id in the retry message")
	}
	task, err := f.cat.TaskStatus(context.Background(), "ps-lyon", m[1])
	if err != nil || task.Type != api.TaskRetryRelocation || !task.DoneAt.IsZero() {
		t.Fatalf("retry task: %+v, %v", task, err)
	}
	if r := c.post("/servers/nobody/retry", url.Values{"csrf": {c.csrf("/")}}); r.code != http.StatusNotFound {
		t.Errorf("retry on an unknown server: %d", r.code)
	}
	if r := c.get("/servers/nobody"); r.code != http.StatusNotFound {
		t.Errorf("unknown server page: %d", r.code)
	}

	// The server list and the dashboard agree.
	list := c.get("/servers")
	if !strings.Contains(list.body, "Needs attention") || !strings.Contains(list.body, "/srv/&lt;b&gt;wharf&lt;/b&gt;") {
		t.Errorf("server list after a warning:\n%s", list.body)
	}
}

func TestRefusedAndCanceledAttempts(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	f.report(api.LocationStatus{StoragePath: "/srv/a", StoragePathInEffect: "/srv/a", LastAttempt: at, LastStatus: 0x001, Outcome: api.OutcomeSuccess})
	f.report(api.LocationStatus{StoragePath: "/srv/b", StoragePathInEffect: "/srv/a", LastAttempt: at.Add(time.Minute),
		Outcome: api.OutcomeCanceled, Message: "relocation to /srv/b stopped between packages"})
	f.report(api.LocationStatus{StoragePath: "/etc/wharf", StoragePathInEffect: "/srv/a", LastAttempt: at.Add(2 * time.Minute),
		LastStatus: 0x040, Outcome: api.OutcomeRefused})
	list := c.get("/servers")
	if !strings.Contains(list.body, "/srv/a") || strings.Contains(list.body, "/etc/wharf") {
		t.Errorf("server list after a refusal does not show the path in effect /srv/a alone:\n%s", list.body)
	}
	page := c.get("/servers/ps-lyon")
	if !strings.Contains(page.body, `id="ls-in-effect"`) {
		t.Errorf("resource manager does not say the store stays at /srv/a")
	}
	if !strings.Contains(page.body, `<code>0x000</code> <span class="badge muted" title="Canceled: another target came">canceled</span>`) {
		t.Errorf("the canceled attempt has no name in the history:\n%s", page.body)
	}
}

func TestCapacityAndLinks(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	if page := c.get("/servers/ps-lyon"); !strings.Contains(page.body, "has not reported its volumes yet") {
		t.Error("resource manager before any health report")
	}
	now := time.Now().UTC()
	for i := 48; i >= 0; i-- { // two days of hourly reports, 2 GiB a day, 20 GiB above a 4 GiB reserve
		rep := api.HealthReport{At: now.Add(-time.Duration(i) * time.Hour),
			Volumes: []api.VolumeUsage{{Volume: "/data", TotalMB: 80 << 10, FreeMB: 24<<10 + int64(i)*2048/24, ReserveMB: 4 << 10}}}
		if i == 0 {
			rep.Links = &api.LinkAudit{At: now, Links: 3, Counts: map[string]int{api.LinkMissing: 1},
				Problems: []api.LinkProblem{{PackageID: "0b6f0b0e-0000-4000-8000-000000000001", Kind: api.LinkMissing,
					Link: "/srv/new/x", Folder: "/srv/old/x", Detail: "no link at /srv/new/x"}}}
		}
		if _, err := f.cat.ReportHealth(context.Background(), f.server, rep); err != nil {
			t.Fatal(err)
		}
	}
	page := c.get("/servers/ps-lyon")
	for _, want := range []string{`id="capacity-table"`, `data-volume="/data"`, "Reaches its reserve in 10", `<svg class="chart"`,
		`class="forecast"`, "fills 2.0 GiB a day", `id="link-problems"`, "link-missing", "no link at /srv/new/x", "1 with problems"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("resource manager lacks %q", want)
		}
	}
}

func TestAlertsPage(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	at := time.Now().UTC()
	f.report(api.LocationStatus{StoragePath: `/srv/<script>alert(1)</script>`, LastAttempt: at, LastStatus: 0x001, MaxAttempts: 3})
	f.report(api.LocationStatus{StoragePath: "/srv/b", LastAttempt: at, LastStatus: 0x020, MaxAttempts: 3})
	f.report(api.LocationStatus{StoragePath: "/srv/b", LastAttempt: at, LastStatus: 0x420, MaxAttempts: 3}) // a manual retry, refused alike
	page := c.get("/alerts")
	if !strings.Contains(page.body, `raised 2 times`) || !strings.Contains(page.body, "×2") {
		t.Errorf("the repeated refusal is not shown as one alert raised twice:\n%s", page.body)
	}
	if strings.Contains(page.body, "<script>alert(1)") || !strings.Contains(page.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("alert message is not escaped")
	}
	if !strings.Contains(page.body, "relocation to /srv/b refused: insufficient-space") || strings.Count(page.body, `class="unread"`) != 2 {
		t.Fatalf("alerts page:\n%s", page.body)
	}
	list, _ := f.cat.Alerts(context.Background(), true)
	r := c.post("/alerts/"+list.Alerts[0].ID+"/read", url.Values{"csrf": {c.csrf("/alerts")}})
	if r.code != http.StatusSeeOther || r.location != "/alerts" {
		t.Fatalf("mark read: %d to %q", r.code, r.location)
	}
	if list, _ := f.cat.Alerts(context.Background(), true); len(list.Alerts) != 1 {
		t.Fatalf("unread after marking one: %d", len(list.Alerts))
	}
	if r := c.post("/alerts/read-all", url.Values{"csrf": {c.csrf("/alerts")}, "show": {"unread"}}); r.location != "/alerts?show=unread" {
		t.Fatalf("read all: %d to %q", r.code, r.location)
	}
	if list, _ := f.cat.Alerts(context.Background(), true); len(list.Alerts) != 0 {
		t.Fatalf("unread after marking all: %d", len(list.Alerts))
	}
	if r := c.post("/alerts/nope/read", url.Values{"csrf": {c.csrf("/alerts")}}); r.code != http.StatusNotFound {
		t.Errorf("mark an unknown alert: %d", r.code)
	}
}

func TestCheckLocation(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	send := func(path, server string) response {
		return c.post("/settings/check", url.Values{"csrf": {c.csrf("/settings")}, "version": {"0"}, "check": {"linux"},
			"linux_mode": {"custom"}, "linux_path": {path}, "windows_mode": {"default"}, "check_server_linux": {server}})
	}
	if r := send("rel", "ps-lyon"); r.code != http.StatusBadRequest || !strings.Contains(fieldError(r.body, "linux_location"), "not an absolute Linux path") {
		t.Fatalf("check a bad path: %d %q", r.code, fieldError(r.body, "linux_location"))
	}
	if r := send("/srv/x", "ghost"); r.code != http.StatusBadRequest || !strings.Contains(fieldError(r.body, "linux_location"), "not enrolled") {
		t.Fatalf("check on an unknown server: %d %q", r.code, fieldError(r.body, "linux_location"))
	}
	r := send("/srv/new", "ps-lyon")
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/settings?") {
		t.Fatalf("check: %d to %q", r.code, r.location)
	}
	q, _ := url.ParseQuery(strings.TrimPrefix(strings.Split(r.location, "#")[0], "/settings?"))
	page := c.get(strings.Split(r.location, "#")[0])
	if !strings.Contains(page.body, "Waiting for ps-lyon to check") || !strings.Contains(page.body, `data-task-url="/servers/ps-lyon/tasks/`+q.Get("check_task")+`/status.json"`) {
		t.Fatalf("pending check:\n%s", page.body)
	}
	if js := c.get("/servers/ps-lyon/tasks/" + q.Get("check_task") + "/status.json"); js.body != "{\"done\":false}\n" {
		t.Errorf("task status while pending: %s", js.body)
	}
	plan := &api.LocationPlan{Path: "/srv/new", Status: 0x020, StatusFlags: []string{"insufficient-space"}, NeededMB: 5000, FreeMB: 1200,
		LongestPath: 120, PathLimit: 4095, CopyPackages: 3, CopyBytes: 5 << 30, EstimateSeconds: 300,
		Prerequisites: []api.Prerequisite{{Name: "not-fixed-media", OK: true}, {Name: "insufficient-space", OK: false, Detail: "5000 MiB needed, 1200 free"}}}
	if err := f.cat.CompleteTask(context.Background(), f.server, q.Get("check_task"), api.TaskResult{Plan: plan}); err != nil {
		t.Fatal(err)
	}
	page = c.get(strings.Split(r.location, "#")[0])
	for _, want := range []string{"ps-lyon cannot relocate to <code>/srv/new</code>: Not enough free space on the target volume",
		"4.9 GiB needed, 1.2 GiB free", "120 of at most 4095", "0 by rename, 3 by copy (5 GiB)", "5 min 0 s", "5000 MiB needed, 1200 free", "✘ Enough space", "✔ Fixed media"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("answered check lacks %q", want)
		}
	}
	if p := f.psPolicy(); p.Version != 0 {
		t.Errorf("a check saved the policy: %+v", p)
	}
}

func TestPackagesPages(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	if r := c.get("/packages"); r.code != 200 || !strings.Contains(r.body, "No packages yet") {
		t.Fatalf("empty packages page: %d", r.code)
	}
	if r := c.get("/packages/0b6f0b0e-0000-4000-8000-000000000001"); r.code != http.StatusNotFound {
		t.Errorf("unknown package: %d", r.code)
	}
	if r := c.get("/packages/not-an-id"); r.code != http.StatusNotFound {
		t.Errorf("malformed package id: %d", r.code)
	}
	if r := c.get("/static/style.css"); r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") || r.header.Get("ETag") == "" {
		t.Errorf("style.css: %d %q", r.code, r.header.Get("Content-Type"))
	}
	if r := c.get("/static/nope.js"); r.code != 404 {
		t.Errorf("unknown asset: %d", r.code)
	}
}

// TestCatalogErrorsNextToFields checks that a rule only the catalog knows
// comes back next to its field.
func TestCatalogErrorsNextToFields(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	r := c.post("/settings/package-server", url.Values{"csrf": {c.csrf("/settings")}, "version": {"0"},
		"linux_mode": {"default"}, "windows_mode": {"default"}, "relocation_mode": {"sideways"}})
	if r.code != http.StatusBadRequest || !strings.Contains(fieldError(r.body, "relocation_mode"), `"sideways", want online or exclusive`) {
		t.Errorf("bad relocation mode: %d %q", r.code, fieldError(r.body, "relocation_mode"))
	}
}

func TestPackageDetail(t *testing.T) {
	f := newFixture(t, console.Options{})
	c := f.loggedIn()
	call := func(method, path, body string) response {
		t.Helper()
		req, _ := http.NewRequest(method, f.url+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+f.token)
		return c.do(req)
	}
	content := "echo <hello>\n"
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])
	if r := call("PUT", "/blobs/"+digest, content); r.code/100 != 2 {
		t.Fatalf("put blob: %d %s", r.code, r.body)
	}
	r := call("POST", "/packages", `{"name":"tools","version":"1.0","files":[{"path":"bin/a&b.sh","size":13,"sha256":"`+digest+
		`"}],"assignment":{"servers":["ps-lyon","ps-gone"]},"signed":true}`)
	if r.code != http.StatusCreated {
		t.Fatalf("create package: %d %s", r.code, r.body)
	}
	var pkg struct{ ID string }
	json.Unmarshal([]byte(r.body), &pkg)
	if err := f.cat.ReportStates(context.Background(), f.server, []api.PackageState{{PackageID: pkg.ID, State: "failed", Reason: "disk <full>"}}); err != nil {
		t.Fatal(err)
	}
	page := c.get("/packages/" + pkg.ID)
	for _, want := range []string{"tools <span class=\"version\">1.0</span>", "bin/a&amp;b.sh", "13 B", "ps-gone, ps-lyon",
		"signed URLs", "Failed", "disk &lt;full&gt;", "ps-gone <small>(not enrolled)</small>", "0 of 2 assigned servers"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("package page lacks %q", want)
		}
	}
	list := c.get("/packages?q=TOO")
	if !strings.Contains(list.body, `href="/packages/`+pkg.ID+`"`) || !strings.Contains(list.body, "signed") {
		t.Errorf("packages list filtered by name lacks the package")
	}
	if list := c.get("/packages?q=nothing"); !strings.Contains(list.body, "No package matches") {
		t.Errorf("packages list filtered by nothing")
	}
}

// TestPackagesPagedAndFilteredInSQL: /packages shows 100 packages a page
// with links to the others, a filter is applied by the database (matching
// name, version or id), and the dashboard counts every package.
func TestPackagesPagedAndFilteredInSQL(t *testing.T) {
	f := newFixture(t, console.Options{})
	ac, err := apiclient.New(f.url, f.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 130 {
		data := []byte(fmt.Sprintf("package %d", i))
		sum := sha256.Sum256(data)
		d := hex.EncodeToString(sum[:])
		if err := ac.PutBlob(ctx, wharf.Digest(d), bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ac.CreatePackage(ctx, api.PackageManifest{Name: fmt.Sprintf("pkg%03d", i), Version: "1",
			Files: []api.File{{Path: "f", Size: int64(len(data)), SHA256: d}}, Assignment: api.Assignment{All: true}}); err != nil {
			t.Fatal(err)
		}
	}
	c := f.loggedIn()
	rows := regexp.MustCompile(`<a href="/packages/[0-9a-f-]{36}">(pkg\d{3})</a>`)
	names := func(body string) []string {
		var out []string
		for _, m := range rows.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	r := c.get("/packages")
	got := names(r.body)
	if r.code != 200 || len(got) != 100 || got[0] != "pkg000" || got[99] != "pkg099" ||
		!strings.Contains(r.body, "1 to 100 of 130 packages") || !strings.Contains(r.body, `href="/packages?offset=100" rel="next"`) {
		t.Fatalf("first page: %d, %d rows %v", r.code, len(got), got)
	}
	r = c.get("/packages?offset=100")
	if got := names(r.body); r.code != 200 || len(got) != 30 || got[0] != "pkg100" || !strings.Contains(r.body, "101 to 130 of 130 packages") ||
		!strings.Contains(r.body, `href="/packages?offset=0" rel="prev"`) || strings.Contains(r.body, `rel="next"`) {
		t.Errorf("second page: %d, %v", r.code, got)
	}
	r = c.get("/packages?q=PKG12")
	if got := names(r.body); r.code != 200 || !slices.Equal(got, []string{"pkg120", "pkg121", "pkg122", "pkg123", "pkg124",
		"pkg125", "pkg126", "pkg127", "pkg128", "pkg129"}) || !strings.Contains(r.body, "of 10 matching, 130 packages") {
		t.Errorf("filtered: %d, %v", r.code, got)
	}
	if r := c.get("/packages?offset=-1"); r.code != http.StatusBadRequest {
		t.Errorf("negative offset: %d", r.code)
	}
	if r := c.get("/"); r.code != 200 || !regexp.MustCompile(`>\s*130\s*<`).MatchString(r.body) {
		t.Errorf("dashboard: %d, no count of 130 packages", r.code)
	}
}
