package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/publish"
	"github.com/wharf-project/wharf/internal/wharf"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// consoleRun is a real NS and PS with a browser logged in to the console.
type consoleRun struct {
	t       *testing.T
	dir     string
	nsURL   string
	env     []string // WHARF_NS, WHARF_TOKEN
	token   string
	ps      string // the PS's name
	psDir   string // its install dir
	pkg     api.PackageSummary
	browser *browser
}

// TestConsoleInBrowser drives the NS web console in headless Chromium
// against a real `wharf ns serve` and an enrolled `wharf ps serve`: login
// (a wrong token is refused), dashboard, packages, Site Server Settings (a
// bad Linux path shows an error next to the field and changes nothing; a
// good one is saved), Package Servers, the Resource Manager following a
// relocation, alerts, logout, and a console user. Requests without a
// session or without the CSRF token are refused. With WHARF_SCREENSHOTS=1
// it writes the screenshots of the main pages to docs/screenshots.
func TestConsoleInBrowser(t *testing.T) {
	c := startConsole(t)
	b := c.browser

	// Without a session every page leads to the login form.
	b.open("/servers")
	if loc := b.location(); !strings.Contains(loc, "/login?next=%2Fservers") {
		t.Fatalf("without a session /servers went to %s, want the login page", loc)
	}
	if code := b.login("", "wharf-admin-not-the-token"); code != http.StatusUnauthorized {
		t.Errorf("login with a wrong token answered %d, want 401", code)
	}
	if msg := b.text("#login-error"); !strings.Contains(msg, "Wrong admin token") {
		t.Errorf("login error %q", msg)
	}
	b.shot("login")
	if code := b.login("", c.token); code != http.StatusOK {
		t.Fatalf("login with the admin token answered %d", code)
	}
	if loc := b.location(); !strings.HasSuffix(loc, "/servers") {
		t.Errorf("after login at %s, want back at /servers", loc)
	}

	// Dashboard.
	b.open("/")
	if n := b.text("#server-count"); n != "1" {
		t.Errorf("dashboard counts %s Package Servers, want 1", n)
	}
	if n := b.text("#package-count"); n != "2" {
		t.Errorf("dashboard counts %s packages, want 2", n)
	}

	// Packages and a package.
	b.open("/packages")
	if txt := b.text("#packages-table"); !strings.Contains(txt, c.pkg.Name) || !strings.Contains(txt, c.pkg.Version) {
		t.Errorf("packages table lacks %s %s:\n%s", c.pkg.Name, c.pkg.Version, txt)
	}
	b.shot("packages")
	b.follow(`#packages-table a[href="/packages/` + c.pkg.ID + `"]`)
	if txt := b.text("#package-files"); !strings.Contains(txt, "lib/payload.bin") || !strings.Contains(txt, "1 MiB") {
		t.Errorf("package files table:\n%s", txt)
	}
	b.waitText("#package-servers", "Ready")
	b.shot("package")

	// Pin the PS to its default location with an override, made in the
	// Resource Manager's editor, so that the settings below do not move
	// its packages: its relocation is then driven by events.
	b.open("/servers/" + c.ps)
	b.click("#set_linux_location")
	b.setValue("#ov_linux_location", "default")
	if code := b.submit("#save-override-package-server"); code != http.StatusOK {
		t.Fatalf("saving the override answered %d", code)
	}
	var eff api.EffectivePolicy
	mustJSON(t, c.env, &eff, "policy", "get", "--server", c.ps)
	if len(eff.Overridden) != 1 || eff.Overridden[0] != "linux_location" {
		t.Fatalf("after the override editor, overridden fields %v, want [linux_location]", eff.Overridden)
	}

	// Settings: a bad path shows an error next to the field, nothing saved.
	b.open("/settings")
	b.click("#linux_mode_custom")
	b.setValue("#linux_path", "relative/store")
	if code := b.submit("#save-package-server"); code != http.StatusBadRequest {
		t.Errorf("saving a relative path answered %d, want 400", code)
	}
	if msg := b.text("#linux_location-error"); !strings.Contains(msg, "not an absolute Linux path") {
		t.Errorf("error next to the Linux location: %q", msg)
	}
	if v := b.value("#linux_path"); v != "relative/store" {
		t.Errorf("the form lost what was typed: %q", v)
	}
	b.shot("settings-error")
	var g globalPolicies
	mustJSON(t, c.env, &g, "policy", "get")
	if g.PackageServer.Version != 0 || *g.PackageServer.Settings.LinuxLocation != api.LocationDefault {
		t.Fatalf("a refused form changed the policy: %+v", g.PackageServer)
	}

	// A good path is saved.
	target := filepath.Join(c.dir, "store")
	b.open("/settings")
	b.click("#linux_mode_custom")
	b.setValue("#linux_path", target)
	if code := b.submit("#save-package-server"); code != http.StatusOK {
		t.Fatalf("saving %s answered %d", target, code)
	}
	if msg := b.text(".flash.ok"); !strings.Contains(msg, "Saved Package Server Settings (version 1)") {
		t.Errorf("after saving: %q", msg)
	}
	mustJSON(t, c.env, &g, "policy", "get")
	if g.PackageServer.Version != 1 || *g.PackageServer.Settings.LinuxLocation != target {
		t.Fatalf("saved policy: %+v, want linux_location %s at version 1", g.PackageServer, target)
	}
	b.shot("settings")

	// Check asks the PS to evaluate the typed path through a server task;
	// the page waits for the PS's answer and shows the verdicts.
	b.setValue("#linux_path", filepath.Join(c.dir, "other-store"))
	if code := b.submit("#check-linux"); code != http.StatusOK {
		t.Fatalf("check answered %d", code)
	}
	b.waitText("#check-result-linux", c.ps+" can relocate to")
	b.shot("settings-check")
	mustJSON(t, c.env, &g, "policy", "get")
	if g.PackageServer.Version != 1 {
		t.Errorf("a check saved the policy: version %d", g.PackageServer.Version)
	}

	// Package Servers.
	b.open("/servers")
	if txt := b.text("#servers-table"); !strings.Contains(txt, c.ps) || !strings.Contains(txt, "Online") {
		t.Errorf("servers table:\n%s", txt)
	}

	// The Resource Manager while a relocation runs and ends.
	driveRelocationByEvents(t, c, target)
	// Its capacity forecast, from ten days of the PS's volume reports.
	driveCapacity(t, c)

	// Alerts: the informational alert of the success; mark it read.
	b.open("/alerts")
	row := `#alerts-table tr.unread[data-alert]`
	if txt := b.text("#alerts-table"); !strings.Contains(txt, "all packages are at the new location "+target) ||
		!strings.Contains(txt, "Some of the files have not been moved to the new location") {
		t.Errorf("alerts table:\n%s", txt)
	}
	b.shot("alerts")
	before := b.count(row)
	b.submit(row + ` .mark-read`)
	if after := b.count(row); after != before-1 {
		t.Errorf("unread alerts: %d after marking one read, want %d", after, before-1)
	}
	unread, err := c.admin().Alerts(context.Background(), true)
	if err != nil || len(unread) != before-1 {
		t.Errorf("unread alerts through the API: %d (%v), want %d", len(unread), err, before-1)
	}
	b.open("/")
	if n := b.text("#alert-count"); n != strconv.Itoa(len(unread)) {
		t.Errorf("dashboard counts %s unread alerts, want %d", n, len(unread))
	}
	b.shot("dashboard")
	b.open("/servers")
	if txt := b.text("#servers-table"); !strings.Contains(txt, target) || !strings.Contains(txt, "Relocated") {
		t.Errorf("servers table after the relocation:\n%s", txt)
	}
	b.shot("servers")

	// Requests without a session, without the CSRF token or from another
	// origin are refused and change nothing.
	c.checkRefusals()

	// Logout ends the session.
	b.submit("#logout")
	b.open("/")
	if loc := b.location(); !strings.Contains(loc, "/login") {
		t.Errorf("after logout / went to %s, want the login page", loc)
	}

	// A console user logs in with a password.
	c.addUser("alice", "correct horse battery staple")
	if code := b.login("alice", "not her password"); code != http.StatusUnauthorized {
		t.Errorf("login with a wrong password answered %d, want 401", code)
	}
	if code := b.login("alice", "correct horse battery staple"); code != http.StatusOK {
		t.Fatalf("login as alice answered %d", code)
	}
	if who := b.text(".who"); who != "alice" {
		t.Errorf("logged in as %q, want alice", who)
	}
}

// driveRelocationByEvents plays a relocation of the PS to target as the PS
// would report it, with real Package Location Status events posted through
// the agent API with the PS's own credential, and checks what the Resource
// Manager shows at each step: the progress of a running attempt, a warning
// with a package left behind a link, the Retry relocation button queuing a
// retry-relocation task, then success, and the alerts they raise.
func driveRelocationByEvents(t *testing.T, c *consoleRun, target string) {
	b := c.browser
	agent := c.agent()
	ctx := context.Background()
	started := time.Now().UTC()
	event := func(status wharf.RelocationStatus, state, reason string) api.LocationStatus {
		return api.LocationStatus{StoragePath: target, VolumeTotalMB: 512000, VolumeFreeMB: 301234, PSUsedMB: 3,
			LastAttempt: started, LastStatus: uint32(status), VolumeRequiredMB: 3, AttemptsDone: 0, MaxAttempts: 3,
			Packages: []api.RelocationPackage{{PackageID: c.pkg.ID, State: state, Reason: reason,
				Path: filepath.Join(target, c.pkg.ID)}}}
	}
	post := func(ev api.LocationStatus) {
		t.Helper()
		if err := agent.PostLocationStatus(ctx, c.ps, ev); err != nil {
			t.Fatalf("post location status: %v", err)
		}
	}

	b.open("/servers/" + c.ps)
	if txt := b.text("#location-status"); !strings.Contains(txt, "has not reported a relocation attempt") {
		t.Errorf("location status before any event:\n%s", txt)
	}

	// Running: the page reloads into the progress view, whose bar then
	// follows the events in place.
	running := event(wharf.RelocationInProgress, api.RelocationPending, "")
	running.Progress = &api.RelocationProgress{BytesDone: 400 << 10, BytesTotal: 1 << 20, PackagesDone: 0,
		PackagesTotal: 1, StartedAt: started, ETASeconds: 95}
	post(running)
	b.waitText("#progress-percent", "39%")
	running.Progress.BytesDone, running.Progress.ETASeconds = 768<<10, 20
	post(running)
	b.waitText("#progress-percent", "75%")
	b.waitText("#progress-text", "768 KiB of 1 MiB")
	b.shot("resource-manager-progress")

	// A warning: the package stayed behind a link.
	warning := event(wharf.RelocationSomeNotMoved, api.RelocationLinked, "a file is held open by another process")
	warning.Message = wharf.RelocationWarning
	post(warning)
	b.waitText("#ls-status", "Warning: some packages stay behind links")
	b.waitText("#relocation-packages", "Linked")
	if txt := b.text("#ls-attempts"); txt != "0 done of 3 at most" {
		t.Errorf("attempts: %q", txt)
	}
	if txt := b.text("#ls-total"); txt != "500 GiB" {
		t.Errorf("volume size shown as %q, want 500 GiB", txt)
	}
	if txt := b.text("#history"); !strings.Contains(txt, "some-not-moved") {
		t.Errorf("history after the warning:\n%s", txt)
	}
	b.shot("resource-manager-warning")

	// Retry relocation queues a server task for the PS.
	if code := b.submit("#retry-button"); code != http.StatusOK {
		t.Fatalf("retry relocation answered %d", code)
	}
	id := regexp.MustCompile(`as task (\S+)\.`).FindStringSubmatch(b.text(".flash.ok"))
	if id == nil {
		t.Fatalf("no task id in the flash %q", b.text(".flash.ok"))
	}
	task, err := c.admin().Task(ctx, c.ps, id[1])
	if err != nil || task.Type != api.TaskRetryRelocation {
		t.Fatalf("task %s: %+v, %v; want a retry-relocation task", id[1], task, err)
	}
	// A PS that runs retries reports a manual attempt of its own, toward
	// the location it really has (pinned above): let it end first, so that
	// the success below is the latest event.
	c.waitOwnAttempt(target, task.CreatedAt, 15*time.Second)

	// Success of the manual retry.
	success := event(wharf.RelocationSuccess|wharf.RelocationManual, api.RelocationMoved, "")
	success.LastAttempt = time.Now().UTC()
	post(success)
	// Wait for this event's page: once the PS runs retry tasks itself, it
	// may report an attempt of its own in between.
	b.waitText("#ls-path", target)
	b.waitText("#relocation-outcome", "Relocated")
	b.waitText("#ls-status", "Success: every package is at the target")
	b.waitText("#storage-path", target)
	b.shot("resource-manager")
}

// driveCapacity posts ten days of hourly health reports of a volume that
// fills at 5 GiB a day, with noise, as the PS would send them (its own
// credential, times in the past), and checks the Resource Manager's
// capacity forecast: about 6 days to the reserve, within a day, and an
// alert under the 14-day horizon.
func driveCapacity(t *testing.T, c *consoleRun) {
	b := c.browser
	agent := c.agent()
	now := time.Now().UTC()
	const vol, totalMB, reserveMB, rateMB, endFreeMB = "/srv/wharf-data", 200 << 10, 10 << 10, 5 << 10, 40 << 10
	noise := []int64{-900, 400, 1200, -300, 0, 700, -1100, 250}
	for i := 240; i >= 0; i-- {
		free := int64(endFreeMB) + int64(rateMB)*int64(i)/24 + noise[i%len(noise)]
		rep := api.HealthReport{At: now.Add(-time.Duration(i) * time.Hour), Volumes: []api.VolumeUsage{{Volume: vol,
			Roots: []string{vol + "/store"}, TotalMB: totalMB, FreeMB: free, UsedMB: totalMB - free - 20<<10, ReserveMB: reserveMB}}}
		if err := agent.PostHealth(context.Background(), c.ps, rep); err != nil {
			t.Fatalf("post health report: %v", err)
		}
	}
	srv, err := c.admin().Server(context.Background(), c.ps)
	if err != nil || srv.Health == nil {
		t.Fatalf("server health: %+v %v", srv.Health, err)
	}
	var f *api.VolumeForecast
	for i := range srv.Health.Capacity {
		if srv.Health.Capacity[i].Volume == vol {
			f = &srv.Health.Capacity[i]
		}
	}
	want := float64(endFreeMB-reserveMB) / rateMB
	if f == nil || f.State != api.ForecastFilling || f.DaysLeft < want-1 || f.DaysLeft > want+1 || !f.Alert {
		t.Fatalf("forecast of %s: %+v; want about %.1f days (within a day) and an alert", vol, f, want)
	}
	t.Logf("forecast of %s: %.2f days to the reserve (true %.2f), %.0f MiB a day (true %d)", vol, f.DaysLeft, want, f.GrowthMBPerDay, rateMB)
	b.open("/servers/" + c.ps)
	b.waitText("#capacity", "Reaches its reserve in")
	if b.count(`#capacity-table svg.chart`) == 0 {
		t.Error("no capacity chart on the Resource Manager")
	}
	b.shot("resource-manager-capacity")
}

// waitOwnAttempt waits until the PS reports an ended manual attempt of its
// own (to a path other than target) received after since, or until
// timeout: a PS that does not run retry tasks never reports one.
func (c *consoleRun) waitOwnAttempt(target string, since time.Time, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		h, err := c.admin().LocationHistory(context.Background(), c.ps, 20)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, ev := range h.Events {
			if ev.StoragePath != target && ev.LastStatus&uint32(wharf.RelocationManual) != 0 && !ev.ReceivedAt.Before(since) {
				c.t.Logf("the PS answered the retry: %s at %s", wharf.RelocationStatus(ev.LastStatus), ev.StoragePath)
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Logf("the PS reported no attempt of its own within %s of the retry", timeout)
}

// ---- setup

func startConsole(t *testing.T) *consoleRun {
	t.Helper()
	chrome := chromiumPath
	if p := os.Getenv("WHARF_CHROMIUM"); p != "" {
		chrome = p
	}
	if _, err := os.Stat(chrome); err != nil {
		t.Fatalf("no browser at %s (%v): install chromium: make test runs scripts/test-setup.sh", chrome, err)
	}
	c := &consoleRun{t: t, dir: t.TempDir(), ps: "ps-paris"}
	_, c.nsURL, c.env = startNS(t, filepath.Join(c.dir, "ns"), "")
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, "WHARF_TOKEN="); ok {
			c.token = v
		}
	}
	c.psDir = filepath.Join(c.dir, "ps")
	startPS(t, c.env, c.ps, c.psDir)

	tree := filepath.Join(c.dir, "tree")
	for name, size := range map[string]int{"bin/agent": 48 << 10, "lib/payload.bin": 1 << 20, "README.txt": 900} {
		data := make([]byte, size)
		rand.Read(data)
		os.MkdirAll(filepath.Join(tree, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var res publish.Result
	mustJSON(t, c.env, &res, "package", "add", tree, "--name", "site-agent", "--version", "8.0.2")
	c.pkg = res.Package
	waitPackageReady(t, c.env, c.ps, c.pkg.ID, time.Minute)
	// A second package, signed and assigned by name, for the lists.
	tree2 := filepath.Join(c.dir, "tree2")
	os.MkdirAll(filepath.Join(tree2, "scripts"), 0o755)
	os.WriteFile(filepath.Join(tree2, "scripts", "install.sh"), []byte("#!/bin/sh\necho install\n"), 0o755)
	var res2 publish.Result
	mustJSON(t, c.env, &res2, "package", "add", tree2, "--name", "branch-tools", "--version", "2.4", "--servers", c.ps, "--signed")
	waitPackageReady(t, c.env, c.ps, res2.Package.ID, time.Minute)

	shots := t.TempDir()
	if os.Getenv("WHARF_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.browser = newBrowser(t, chrome, c.nsURL, shots)
	return c
}

func (c *consoleRun) admin() *apiclient.Client {
	cl, err := apiclient.New(c.nsURL, c.token, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// agent returns a client with the PS's own credential, read from its
// install dir.
func (c *consoleRun) agent() *apiclient.Client {
	data, err := os.ReadFile(filepath.Join(c.psDir, "credential.json"))
	if err != nil {
		c.t.Fatalf("read the PS credential: %v", err)
	}
	var cred struct {
		Name       string `json:"name"`
		Credential string `json:"credential"`
	}
	if err := json.Unmarshal(data, &cred); err != nil || cred.Credential == "" || cred.Name != c.ps {
		c.t.Fatalf("PS credential file: %v (name %q)", err, cred.Name)
	}
	cl, err := apiclient.New(c.nsURL, cred.Credential, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// addUser creates a console user with `wharf ns add-user`, the password on
// stdin, while the NS runs.
func (c *consoleRun) addUser(name, password string) {
	cmd := exec.Command(wharfBin, "ns", "add-user", name, "--data", filepath.Join(c.dir, "ns"))
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("wharf ns add-user %s: %v\n%s", name, err, out)
	}
}

// checkRefusals sends forms the console must refuse, over plain HTTP:
// without a session, without the CSRF token, and from another origin. None
// may change the policy.
func (c *consoleRun) checkRefusals() {
	t := c.t
	var before globalPolicies
	mustJSON(t, c.env, &before, "policy", "get")
	form := url.Values{"version": {"1"}, "linux_mode": {"custom"}, "linux_path": {"/srv/evil"}, "windows_mode": {"default"},
		"relocation_mode": {"exclusive"}}
	noRedirect := func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse }

	// No session: sent to the login page.
	hc := &http.Client{CheckRedirect: noRedirect}
	resp, err := hc.PostForm(c.nsURL+"/settings/package-server", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("POST without a session: %d to %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A session of its own, then a form without the token.
	jar, _ := cookiejar.New(nil)
	hc = &http.Client{Jar: jar, CheckRedirect: noRedirect}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	get := func(path string) string {
		resp, err := hc.Get(c.nsURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := csrf.FindSubmatch(body)
		if m == nil {
			t.Fatalf("GET %s: %d, no CSRF field", path, resp.StatusCode)
		}
		return string(m[1])
	}
	resp, err = hc.PostForm(c.nsURL+"/login", url.Values{"csrf": {get("/login")}, "secret": {c.token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login over HTTP: %d", resp.StatusCode)
	}
	token := get("/settings")
	resp, err = hc.PostForm(c.nsURL+"/settings/package-server", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %d, want 403", resp.StatusCode)
	}
	// The right token, but the browser says the form came from elsewhere.
	form.Set("csrf", token)
	req, _ := http.NewRequest("POST", c.nsURL+"/settings/package-server", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", resp.StatusCode)
	}
	var after globalPolicies
	mustJSON(t, c.env, &after, "policy", "get")
	if after.PackageServer.Version != before.PackageServer.Version || *after.PackageServer.Settings.LinuxLocation != *before.PackageServer.Settings.LinuxLocation {
		t.Errorf("refused requests changed the policy: %+v, was %+v", after.PackageServer, before.PackageServer)
	}
}

// ---- the browser

// browser drives one headless Chromium tab against the console.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func newBrowser(t *testing.T, chrome, base, shots string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base, shots: shots}
	// The first action starts the browser, which lives as long as the
	// context of that action: give it ctx itself, not a derived timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium %s: %v", chrome, err)
	}
	return b
}

// step bounds one browser action.
const step = 30 * time.Second

func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// open loads a console page and returns its HTTP status.
func (b *browser) open(path string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(b.base+path))
	if err != nil {
		b.t.Fatalf("browser: open %s: %v", path, err)
	}
	return int(resp.Status)
}

// submit clicks a button that sends a form and returns the HTTP status of
// the page it leads to (after redirects).
func (b *browser) submit(sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: submit with %s: %v", sel, err)
	}
	return int(resp.Status)
}

// follow clicks a link and waits for the page.
func (b *browser) follow(sel string) int { b.t.Helper(); return b.submit(sel) }

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// setValue sets an input's value as typing would, firing "input".
func (b *browser) setValue(sel, v string) {
	b.t.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	js := `(function (e, v) { if (!e) return false; e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); return true; })` +
		`(document.querySelector(` + jsString(sel) + `), ` + jsString(v) + `)`
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil || !ok {
		b.t.Fatalf("browser: set %s: %v (found: %v)", sel, err, ok)
	}
}

// login fills the login form (opening it if needed) and returns the
// status of the page that follows.
func (b *browser) login(user, secret string) int {
	b.t.Helper()
	if !strings.Contains(b.location(), "/login") {
		b.open("/login")
	}
	b.setValue("#user", user)
	b.setValue("#secret", secret)
	return b.submit("#login-submit")
}

func (b *browser) location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("browser: location: %v", err)
	}
	return loc
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) value(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: value of %s: %v", sel, err)
	}
	return s
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
	if err != nil {
		b.t.Fatalf("browser: count %s: %v", sel, err)
	}
	return n
}

// waitText waits until the element's text contains want: the page's
// script reloads it or updates it in place as events arrive.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(step)
	last := ""
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			last = strings.Join(strings.Fields(s), " ")
			if strings.Contains(last, want) {
				return
			}
		} else if !errors.Is(err, context.DeadlineExceeded) {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: %s does not show %q after %s; it shows %q", sel, want, step, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shot saves a PNG of the whole page as <name>.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	// From the top, so that the sticky header is where it belongs.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function () { window.scrollTo(0, 0); return true; })()`)); err != nil {
		b.t.Fatalf("browser: scroll to the top: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

func jsString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}
