package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
)

func (f *fixture) enroll(name, os string) string {
	f.t.Helper()
	ctx := context.Background()
	tok, err := f.cat.MintEnrollToken(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	e, err := f.cat.Enroll(ctx, api.EnrollRequest{Token: tok.Token, Name: name, OS: os, URL: "http://127.0.0.1:9"})
	if err != nil {
		f.t.Fatal(err)
	}
	return e.Credential
}

func (f *fixture) effective(server string) api.EffectivePolicy {
	f.t.Helper()
	code, body := f.do("GET", "/servers/"+server+"/policy", nil)
	if code != 200 {
		f.t.Fatalf("effective policy of %s: %d %s", server, code, body)
	}
	var e api.EffectivePolicy
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		f.t.Fatal(err)
	}
	return e
}

func (f *fixture) agentConfig(name, cred string) (api.AgentConfig, string) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.url+api.Prefix+"/agent/"+name+"/config?wait=0", nil)
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg api.AgentConfig
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		f.t.Fatal(err)
	}
	return cfg, resp.Header.Get("ETag")
}

func TestPolicyInheritance(t *testing.T) {
	f := newFixture(t)
	credA := f.enroll("ps-a", "linux")
	f.enroll("ps-w", "windows")

	// Global only: the defaults.
	e := f.effective("ps-a")
	if *e.PackageServer.LinuxLocation != "default" || *e.PackageServer.RelocationMode != "online" ||
		*e.PackageServer.AllFixedDrives || *e.SiteServer.DownloadConcurrency != 4 || len(e.Overridden) != 0 {
		t.Fatalf("defaults: %+v", e)
	}

	// A global edit of one field keeps the others.
	if code, body := f.do("PUT", "/policies/package-server", strings.NewReader(`{"linux_location":"/srv/wharf","windows_location":"E:\\Wharf"}`)); code != 200 {
		t.Fatalf("global put: %d %s", code, body)
	}
	if code, body := f.do("PUT", "/policies/package-server", strings.NewReader(`{"all_fixed_drives":true}`)); code != 200 {
		t.Fatalf("global put: %d %s", code, body)
	}
	e = f.effective("ps-a")
	if *e.PackageServer.LinuxLocation != "/srv/wharf" || !*e.PackageServer.AllFixedDrives {
		t.Fatalf("after global edits: %+v", e.PackageServer)
	}
	cfg, _ := f.agentConfig("ps-a", credA)
	if cfg.Settings.StorageLocation != "/srv/wharf" || !cfg.Settings.AllFixedDrives {
		t.Fatalf("agent config of a Linux PS: %+v", cfg.Settings)
	}
	if e := f.effective("ps-w"); *e.PackageServer.WindowsLocation != `E:\Wharf` {
		t.Fatalf("windows location: %+v", e.PackageServer)
	}

	// Partial override: one field overridden, the rest inherited.
	if code, body := f.do("PUT", "/servers/ps-a/policies/package-server", strings.NewReader(`{"linux_location":"/data/pkgs"}`)); code != 200 {
		t.Fatalf("override: %d %s", code, body)
	}
	if code, body := f.do("PUT", "/policies/package-server", strings.NewReader(`{"relocation_mode":"exclusive"}`)); code != 200 {
		t.Fatalf("global put: %d %s", code, body)
	}
	e = f.effective("ps-a")
	if *e.PackageServer.LinuxLocation != "/data/pkgs" || *e.PackageServer.RelocationMode != "exclusive" ||
		fmt.Sprint(e.Overridden) != "[linux_location]" {
		t.Fatalf("partial override: %+v overridden=%v", e.PackageServer, e.Overridden)
	}
	if e := f.effective("ps-w"); *e.PackageServer.LinuxLocation != "/srv/wharf" {
		t.Fatalf("an override of ps-a leaked to ps-w: %+v", e.PackageServer)
	}

	// Full override of both policies.
	if code, body := f.do("PUT", "/servers/ps-a/policies/package-server", strings.NewReader(
		`{"windows_location":"D:\\X","all_fixed_drives":false,"relocation_mode":"online"}`)); code != 200 {
		t.Fatalf("override: %d %s", code, body)
	}
	if code, body := f.do("PUT", "/servers/ps-a/policies/site-server", strings.NewReader(
		`{"poll_interval_seconds":5,"download_concurrency":2,"download_bandwidth":1000000}`)); code != 200 {
		t.Fatalf("override: %d %s", code, body)
	}
	e = f.effective("ps-a")
	if len(e.Overridden) != 7 || *e.PackageServer.AllFixedDrives || *e.SiteServer.DownloadBandwidth != 1000000 {
		t.Fatalf("full override: %+v %+v overridden=%v", e.PackageServer, e.SiteServer, e.Overridden)
	}
	cfg, _ = f.agentConfig("ps-a", credA)
	if cfg.Settings.PollWaitSeconds != 5 || cfg.Settings.DownloadConcurrency != 2 || cfg.Settings.DownloadBandwidth != 1000000 {
		t.Fatalf("agent settings with overrides: %+v", cfg.Settings)
	}

	// Reset: back to the global values.
	if code, body := f.do("DELETE", "/servers/ps-a/policies", nil); code != 204 {
		t.Fatalf("reset: %d %s", code, body)
	}
	e = f.effective("ps-a")
	if *e.PackageServer.LinuxLocation != "/srv/wharf" || *e.PackageServer.RelocationMode != "exclusive" ||
		*e.SiteServer.DownloadConcurrency != 4 || len(e.Overridden) != 0 {
		t.Fatalf("after reset: %+v %+v %v", e.PackageServer, e.SiteServer, e.Overridden)
	}
	if code, _ := f.do("GET", "/servers/ps-a/policies/package-server", nil); code != 404 {
		t.Fatalf("override after reset: %d, want 404", code)
	}
}

func TestPolicyValidationChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.enroll("ps-a", "linux")
	before := func() (string, string) {
		_, g := f.do("GET", "/policies/package-server", nil)
		_, s := f.do("GET", "/policies/site-server", nil)
		return g, s
	}
	g0, s0 := before()
	cases := []struct {
		name, path, body, field string
		want                    int
	}{
		{"relative linux path", "/policies/package-server", `{"linux_location":"srv/wharf"}`, "linux_location", 400},
		{"unclean linux path", "/policies/package-server", `{"linux_location":"/srv/../etc"}`, "linux_location", 400},
		{"linux root", "/policies/package-server", `{"linux_location":"/"}`, "linux_location", 400},
		{"nul", "/policies/package-server", `{"linux_location":"/srv/a\u0000b"}`, "linux_location", 400},
		{"windows path in linux field", "/policies/package-server", `{"linux_location":"E:\\Store"}`, "linux_location", 400},
		{"linux path in windows field", "/policies/package-server", `{"windows_location":"/srv/x"}`, "windows_location", 400},
		{"windows relative", "/policies/package-server", `{"windows_location":"Store\\x"}`, "windows_location", 400},
		{"windows parent", "/policies/package-server", `{"windows_location":"E:\\a\\..\\b"}`, "windows_location", 400},
		{"windows share", "/policies/package-server", `{"windows_location":"\\\\server\\share"}`, "network share", 400},
		{"windows bad char", "/policies/package-server", `{"windows_location":"E:\\a|b"}`, "windows_location", 400},
		{"long path", "/policies/package-server", `{"linux_location":"/` + strings.Repeat("a", 5000) + `"}`, "linux_location", 400},
		{"mode", "/policies/package-server", `{"relocation_mode":"sometimes"}`, "relocation_mode", 400},
		{"two bad fields, both named", "/policies/package-server", `{"relocation_mode":"x","linux_location":"y"}`, "relocation_mode", 400},
		{"wrong type", "/policies/package-server", `{"all_fixed_drives":"yes"}`, "all_fixed_drives", 400},
		{"unknown field", "/policies/package-server", `{"colour":"red"}`, "colour", 400},
		{"poll zero", "/policies/site-server", `{"poll_interval_seconds":0}`, "poll_interval_seconds", 400},
		{"concurrency", "/policies/site-server", `{"download_concurrency":1000}`, "download_concurrency", 400},
		{"negative bandwidth", "/policies/site-server", `{"download_bandwidth":-1}`, "download_bandwidth", 400},
		{"unknown kind", "/policies/other", `{}`, "policy kind", 404},
		{"unknown server", "/servers/ghost/policies/package-server", `{"linux_location":"/a"}`, "ghost", 404},
		{"bad override", "/servers/ps-a/policies/package-server", `{"linux_location":"rel"}`, "linux_location", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := f.do("PUT", c.path, strings.NewReader(c.body))
			if code != c.want || !strings.Contains(body, c.field) {
				t.Fatalf("got %d %s; want %d naming %q", code, body, c.want, c.field)
			}
		})
	}
	if g, s := before(); g != g0 || s != s0 {
		t.Fatalf("a refused edit changed a policy:\n%s\n%s", g, s)
	}
	if code, _ := f.do("GET", "/servers/ps-a/policies/package-server", nil); code != 404 {
		t.Fatal("a refused override was stored")
	}
	if e := f.effective("ps-a"); len(e.Overridden) != 0 || *e.PackageServer.LinuxLocation != "default" {
		t.Fatalf("a refused override shows in the effective policy: %+v", e)
	}
}

// TestPolicyDelivery: with three PSs long-polling, an override wakes only
// its server, within a second; a global edit reaches all three.
func TestPolicyDelivery(t *testing.T) {
	f := newFixture(t)
	names := []string{"ps-1", "ps-2", "ps-3"}
	cred, etag := map[string]string{}, map[string]string{}
	for _, n := range names {
		cred[n] = f.enroll(n, "linux")
		_, etag[n] = f.agentConfig(n, cred[n])
	}
	type answer struct {
		name  string
		code  int
		etag  string
		after time.Duration
		cfg   api.AgentConfig
	}
	poll := func(name string, wait int) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			start := time.Now()
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s/agent/%s/config?wait=%d", f.url, api.Prefix, name, wait), nil)
			req.Header.Set("Authorization", "Bearer "+cred[name])
			req.Header.Set("If-None-Match", etag[name])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				ch <- answer{name: name, code: -1}
				return
			}
			defer resp.Body.Close()
			a := answer{name: name, code: resp.StatusCode, etag: resp.Header.Get("ETag"), after: time.Since(start)}
			if a.code == 200 {
				json.NewDecoder(resp.Body).Decode(&a.cfg)
			}
			ch <- a
		}()
		return ch
	}

	// An override for ps-2 wakes ps-2 at once; ps-1 and ps-3 time out.
	chans := map[string]<-chan answer{"ps-1": poll("ps-1", 3), "ps-2": poll("ps-2", 30), "ps-3": poll("ps-3", 3)}
	f.waitPolls(3)
	if code, body := f.do("PUT", "/servers/ps-2/policies/package-server", strings.NewReader(`{"linux_location":"/srv/ps2"}`)); code != 200 {
		t.Fatalf("override: %d %s", code, body)
	}
	a := <-chans["ps-2"]
	if a.code != 200 || a.after > 2*time.Second || a.cfg.Settings.StorageLocation != "/srv/ps2" {
		t.Fatalf("ps-2: %d after %s, location %q; want 200 within a second with /srv/ps2", a.code, a.after, a.cfg.Settings.StorageLocation)
	}
	etag["ps-2"] = a.etag
	for _, n := range []string{"ps-1", "ps-3"} {
		if a := <-chans[n]; a.code != 304 || a.etag != etag[n] {
			t.Fatalf("%s: %d etag %s; want 304 with its old ETag %s", n, a.code, a.etag, etag[n])
		}
	}

	// A global edit reaches all three.
	for _, n := range names {
		chans[n] = poll(n, 30)
	}
	f.waitPolls(3)
	if code, body := f.do("PUT", "/policies/site-server", strings.NewReader(`{"download_concurrency":8}`)); code != 200 {
		t.Fatalf("global edit: %d %s", code, body)
	}
	for _, n := range names {
		a := <-chans[n]
		if a.code != 200 || a.after > 2*time.Second || a.cfg.Settings.DownloadConcurrency != 8 {
			t.Fatalf("%s after a global edit: %d after %s, concurrency %d", n, a.code, a.after, a.cfg.Settings.DownloadConcurrency)
		}
	}
}
