package ns

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/wharf"
)

// identity is who sends a request in the matrix.
type identity struct {
	name   string
	bearer string         // Authorization: Bearer, when set
	jar    http.CookieJar // the console session, when set
	csrf   string         // its forms' CSRF token
}

// Expected outcomes.
const (
	allow   = "allow"    // the route's rule lets it through: anything but 401, 403 or a redirect to the login page
	deny401 = "401"      // not authenticated
	deny403 = "403"      // authenticated, not allowed
	denied  = "401/403"  // either
	toLogin = "to-login" // the console's redirect (303) to its login page
	is404   = "404"      // no such route
)

// expect is the rule of the matrix: for a route's access rule, a
// concrete path and an identity, the outcome the NS must give. ok is
// false for an access rule the matrix has no rule for: a new kind of
// route must come with its row.
func expect(access, path, who string) (want string, ok bool) {
	anonymous := who == "anonymous" || who == "console session" // the API takes bearer tokens only
	switch access {
	case "api:anyone", "console:public", "ops:anyone":
		return allow, true
	case "api:none":
		return is404, true
	case "api:reader":
		switch {
		case who == "ps-a" || who == "ps-b":
			return deny403, true
		case anonymous && strings.Contains(path, "/packages/"):
			return deny401, true // the package is signed: a token is needed
		}
		return allow, true
	case "api:admin":
		switch {
		case who == "admin":
			return allow, true
		case anonymous:
			return deny401, true
		}
		return deny403, true
	case "api:agent": // the path names ps-a
		switch {
		case who == "ps-a":
			return allow, true
		case anonymous:
			return deny401, true
		}
		return deny403, true
	case "api:admin-or-agent": // a blob of a package assigned to all
		switch {
		case who == "admin" || who == "ps-a" || who == "ps-b":
			return allow, true
		case anonymous:
			return deny401, true
		}
		return deny403, true
	case "ops:admin":
		if who == "admin" {
			return allow, true
		}
		return denied, true
	case "console:login": // sent without the login page's token
		return deny403, true
	case "console:page", "console:action":
		if who == "console session" && path != "/logout" {
			return allow, true
		}
		return toLogin, true // logout's own answer too
	case "console:json":
		if who == "console session" {
			return allow, true
		}
		return deny401, true
	}
	return "", false
}

// matrixRows is the access rule of every route of the NS (the API's
// httpapi.Access, the console's console.Access, the operations'), as the
// matrix expects it.
var matrixRows = map[string]string{
	"GET /api/v1/blobs/{digest}":                    "api:admin-or-agent",
	"HEAD /api/v1/blobs/{digest}":                   "api:admin-or-agent",
	"PUT /api/v1/blobs/{digest}":                    "api:admin",
	"POST /api/v1/packages":                         "api:admin",
	"GET /api/v1/packages":                          "api:reader",
	"GET /api/v1/packages/{id}":                     "api:reader",
	"DELETE /api/v1/packages/{id}":                  "api:admin",
	"GET /api/v1/packages/{id}/codebases":           "api:reader",
	"POST /api/v1/enroll-tokens":                    "api:admin",
	"POST /api/v1/client-tokens":                    "api:admin",
	"GET /api/v1/client-tokens":                     "api:admin",
	"DELETE /api/v1/client-tokens/{name}":           "api:admin",
	"POST /api/v1/admin-token":                      "api:admin",
	"GET /api/v1/servers":                           "api:admin",
	"GET /api/v1/servers/{name}":                    "api:admin",
	"DELETE /api/v1/servers/{name}":                 "api:admin",
	"POST /api/v1/servers/{name}/rotate-credential": "api:admin",
	"GET /api/v1/servers/{name}/location-history":   "api:admin",
	"POST /api/v1/servers/{name}/tasks":             "api:admin",
	"GET /api/v1/servers/{name}/tasks/{id}":         "api:admin",
	"GET /api/v1/policies/{kind}":                   "api:admin",
	"PUT /api/v1/policies/{kind}":                   "api:admin",
	"GET /api/v1/servers/{name}/policies/{kind}":    "api:admin",
	"PUT /api/v1/servers/{name}/policies/{kind}":    "api:admin",
	"DELETE /api/v1/servers/{name}/policies/{kind}": "api:admin",
	"DELETE /api/v1/servers/{name}/policies":        "api:admin",
	"GET /api/v1/servers/{name}/policy":             "api:admin",
	"GET /api/v1/alerts":                            "api:admin",
	"POST /api/v1/alerts/{id}/read":                 "api:admin",
	"POST /api/v1/alerts/read":                      "api:admin",
	"GET /api/v1/stats":                             "api:admin",
	"POST /api/v1/agent/enroll":                     "api:anyone",
	"GET /api/v1/agent/{name}/config":               "api:agent",
	"GET /api/v1/agent/{name}/packages/{id}":        "api:agent",
	"POST /api/v1/agent/{name}/package-states":      "api:agent",
	"POST /api/v1/agent/{name}/events":              "api:agent",
	"POST /api/v1/agent/{name}/health":              "api:agent",
	"POST /api/v1/agent/{name}/tasks/{id}/result":   "api:agent",
	"POST /api/v1/agent/{name}/credential":          "api:agent",
	"/api/v1/":                                      "api:none",
	"GET /static/{file}":                            "console:public",
	"GET /favicon.ico":                              "console:public",
	"GET /login":                                    "console:public",
	"POST /login":                                   "console:login",
	"POST /logout":                                  "console:action",
	"GET /{$}":                                      "console:page",
	"GET /packages":                                 "console:page",
	"GET /packages/{id}":                            "console:page",
	"GET /servers":                                  "console:page",
	"GET /servers/{name}":                           "console:page",
	"GET /servers/{name}/status.json":               "console:json",
	"GET /servers/{name}/tasks/{id}/status.json":    "console:json",
	"POST /servers/{name}/retry":                    "console:action",
	"POST /servers/{name}/overrides/{kind}":         "console:action",
	"POST /servers/{name}/overrides/{kind}/remove":  "console:action",
	"GET /settings":                                 "console:page",
	"POST /settings/package-server":                 "console:action",
	"POST /settings/site-server":                    "console:action",
	"POST /settings/check":                          "console:action",
	"GET /alerts":                                   "console:page",
	"POST /alerts/{id}/read":                        "console:action",
	"POST /alerts/read-all":                         "console:action",
	"/":                                             "console:page",
	"GET /healthz":                                  "ops:anyone",
	"GET /readyz":                                   "ops:anyone",
	"GET /metrics":                                  "ops:admin",
}

// TestAuthorizationMatrix sends every route of the NS's handler (the API,
// the console, the operations endpoints: Routes, the tables they are
// registered from) as each of anonymous, a client token, the credentials
// of two Package Servers, the admin token and a console session, and
// checks the outcome against expect. A route registered outside the
// tables, or with an access rule the matrix does not know, fails it.
func TestAuthorizationMatrix(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, Config{DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()

	// Every pattern the handler registers is in the tables.
	rec := &recorder{}
	s.register(rec)
	var listed []string
	for _, r := range s.Routes() {
		listed = append(listed, r.Pattern)
	}
	sort.Strings(listed)
	sort.Strings(rec.patterns)
	if !slices.Equal(listed, rec.patterns) {
		t.Fatalf("the handler registers %q\nbut Routes lists %q", rec.patterns, listed)
	}

	// Every route has its row: the access rule the matrix holds for it.
	// A route added without a row, or whose rule changed, fails here.
	for _, r := range s.Routes() {
		want, ok := matrixRows[r.Pattern]
		switch {
		case !ok:
			t.Errorf("route %q (%s) has no row in the authorization matrix: add it to matrixRows", r.Pattern, r.Access)
		case want != r.Access:
			t.Errorf("route %q: access %s, but the matrix says %s", r.Pattern, r.Access, want)
		}
	}
	if len(matrixRows) != len(s.Routes()) {
		t.Errorf("the matrix has %d rows for %d routes: remove the rows of routes that are gone", len(matrixRows), len(s.Routes()))
	}

	// The fleet: two servers, a victim server and client token for the
	// routes that remove things, a signed package for all, a task.
	admin, _ := apiclient.New(hs.URL, s.NewAdminToken, nil)
	anon, _ := apiclient.New(hs.URL, "", nil)
	creds := map[string]string{}
	for _, name := range []string{"ps-a", "ps-b", "ps-victim"} {
		et, err := admin.CreateEnrollToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		enr, err := anon.Enroll(ctx, api.EnrollRequest{Token: et.Token, Name: name, OS: "linux", URL: "http://" + name + ":8081"})
		if err != nil {
			t.Fatal(err)
		}
		creds[name] = enr.Credential
	}
	client, err := admin.CreateClientToken(ctx, "reader")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateClientToken(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	content := []byte("matrix")
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])
	if err := admin.PutBlob(ctx, wharf.Digest(digest), bytes.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	pkg, _, err := admin.CreatePackage(ctx, api.PackageManifest{Name: "signed", Version: "1", Assignment: api.Assignment{All: true},
		Files: []api.File{{Path: "f", Size: int64(len(content)), SHA256: digest}}})
	if err != nil || pkg.Public {
		t.Fatalf("publish: %+v, %v", pkg, err)
	}
	task, err := admin.CreateTask(ctx, "ps-a", api.TaskRequest{Type: api.TaskRetryRelocation})
	if err != nil {
		t.Fatal(err)
	}
	session := login(t, hs.URL, s.NewAdminToken)

	ids := []identity{
		{name: "anonymous"},
		{name: "client", bearer: client.Token},
		{name: "ps-a", bearer: creds["ps-a"]},
		{name: "ps-b", bearer: creds["ps-b"]},
		{name: "console session", jar: session.jar, csrf: session.csrf},
		{name: "admin", bearer: s.NewAdminToken},
	}
	// What removes or replaces comes last: deletions, then the admin
	// token's rotation, then the logout.
	routes := s.Routes()
	rank := func(r Route) int {
		switch {
		case strings.HasSuffix(r.Pattern, "/logout"):
			return 3
		case strings.HasSuffix(r.Pattern, "/admin-token"):
			return 2
		case strings.HasPrefix(r.Pattern, "DELETE "):
			return 1
		}
		return 0
	}
	sort.SliceStable(routes, func(i, j int) bool { return rank(routes[i]) < rank(routes[j]) })

	noRedirect := func(jar http.CookieJar) *http.Client {
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	for _, rt := range routes {
		method, path := concrete(rt, pkg.ID, digest, task.ID)
		for i := range ids {
			who := &ids[i]
			want, ok := expect(rt.Access, path, who.name)
			if !ok {
				t.Errorf("%s: access rule %q has no row in the authorization matrix", rt.Pattern, rt.Access)
				break
			}
			var body io.Reader
			ctype := ""
			switch {
			case strings.HasPrefix(rt.Access, "console:") && method == http.MethodPost:
				form := url.Values{"csrf": {who.csrf}}
				body, ctype = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
			case method == http.MethodPost || method == http.MethodPut:
				body, ctype = strings.NewReader("{}"), "application/json"
			}
			req, _ := http.NewRequestWithContext(ctx, method, hs.URL+path, body)
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			if who.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+who.bearer)
			}
			resp, err := noRedirect(who.jar).Do(req)
			if err != nil {
				t.Fatalf("%s %s as %s: %v", method, path, who.name, err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := outcome(resp)
			if !matches(got, want) {
				t.Errorf("%-50s as %-15s: %d (%s), want %s\n%s", method+" "+path, who.name, resp.StatusCode, got, want, trim(data))
			}
			if rt.Pattern == "POST /api/v1/admin-token" && who.name == "admin" && resp.StatusCode == http.StatusCreated {
				var tok api.AdminToken
				json.Unmarshal(data, &tok)
				who.bearer = tok.Token // the old one stopped working
			}
		}
		if strings.HasSuffix(rt.Pattern, "/logout") {
			resp, err := noRedirect(session.jar).Get(hs.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if outcome(resp) != toLogin {
				t.Errorf("the session still works after POST /logout: GET / answered %d", resp.StatusCode)
			}
		}
		// An action of the console without its CSRF token is refused.
		if rt.Access == "console:action" && !strings.HasSuffix(rt.Pattern, "/logout") {
			req, _ := http.NewRequestWithContext(ctx, method, hs.URL+path, strings.NewReader("csrf=wrong"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := noRedirect(session.jar).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s as a console session without its CSRF token: %d, want 403", method, path, resp.StatusCode)
			}
		}
	}
}

// concrete turns a route's pattern into a method and a path to send.
func concrete(rt Route, pkgID, digest, taskID string) (method, path string) {
	method, path, ok := strings.Cut(rt.Pattern, " ")
	if !ok {
		method, path = http.MethodGet, rt.Pattern
	}
	agent := strings.HasPrefix(rt.Access, "api:agent")
	name := "ps-victim"
	if agent || strings.Contains(path, "/tasks/{id}") {
		name = "ps-a"
	}
	if strings.HasPrefix(path, "/api/v1/client-tokens/") {
		name = "victim"
	}
	id := pkgID
	if strings.Contains(path, "/tasks/{id}") {
		id = taskID
	}
	path = strings.NewReplacer("{name}", name, "{id}", id, "{digest}", digest, "{kind}", api.PolicyPackageServer,
		"{file}", "favicon.svg", "{$}", "").Replace(path)
	switch path {
	case "/":
		if rt.Pattern == "/" {
			path = "/no-such-page"
		}
	case "/api/v1/":
		path = "/api/v1/no-such-route"
	}
	return method, path
}

// outcome classifies an answer.
func outcome(resp *http.Response) string {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return deny401
	case http.StatusForbidden:
		return deny403
	case http.StatusNotFound:
		return is404
	case http.StatusSeeOther:
		if strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			return toLogin
		}
	}
	return allow
}

func matches(got, want string) bool {
	switch want {
	case denied:
		return got == deny401 || got == deny403
	case allow:
		return got == allow || got == is404 // 404: allowed, and nothing there
	}
	return got == want
}

func trim(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// recorder records the patterns registered on it.
type recorder struct{ patterns []string }

func (r *recorder) Handle(pattern string, _ http.Handler) { r.patterns = append(r.patterns, pattern) }

// consoleSession is a logged-in browser: its cookies and CSRF token.
type consoleSession struct {
	jar  http.CookieJar
	csrf string
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs in to the console with the admin token, as a browser does.
func login(t *testing.T, base, token string) consoleSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	page := func(path string) string {
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := csrfInput.FindStringSubmatch(page("/login"))
	if m == nil {
		t.Fatal("no CSRF token on the login page")
	}
	resp, err := hc.PostForm(base+"/login", url.Values{"csrf": {m[1]}, "secret": {token}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m = csrfInput.FindStringSubmatch(page("/"))
	if m == nil {
		t.Fatal("logged in, but no CSRF token on the dashboard")
	}
	return consoleSession{jar: jar, csrf: m[1]}
}
