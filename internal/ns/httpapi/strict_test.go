package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
)

var lastContact = regexp.MustCompile(`"last_contact": "[^"]*",?`)

// snapshot is what a refused request must leave as it was: the packages,
// the global policies, a server's states, its latest event, the alerts.
func (f *fixture) snapshot(server string) string {
	f.t.Helper()
	var b strings.Builder
	for _, path := range []string{"/packages", "/policies/package-server", "/policies/site-server",
		"/servers/" + server, "/alerts", "/servers/" + server + "/location-history", "/client-tokens"} {
		code, body := f.do("GET", path, nil)
		// A refused agent call still counts as a contact.
		body = lastContact.ReplaceAllString(body, "")
		fmt.Fprintf(&b, "%s %d %s\n", path, code, body)
	}
	return b.String()
}

// TestStrictInputChangesNothing: every hostile input of issue 12 gets a
// clear 4xx naming what is wrong, and the state read back through the API
// is the same as before.
func TestStrictInputChangesNothing(t *testing.T) {
	f := newFixture(t)
	credA := f.enroll("ps-a", "linux")
	f.enroll("ps-b", "linux")
	d := f.putBlob("hello")
	// A package for ps-b only, and one for all.
	onlyB := f.createPackage(api.PackageManifest{Name: "for-b", Version: "1", Assignment: api.Assignment{Servers: []string{"ps-b"}},
		Files: []api.File{{Path: "a", Size: 5, SHA256: d}}})
	all := f.createPackage(api.PackageManifest{Name: "for-all", Version: "1", Assignment: api.Assignment{All: true},
		Files: []api.File{{Path: "a", Size: 5, SHA256: d}}})
	manifest := func(name, path string) string {
		return fmt.Sprintf(`{"name":%q,"version":"2","files":[{"path":%q,"size":5,"sha256":%q}],"assignment":{"all":true}}`, name, path, d)
	}
	event := `{"storage_path":"/srv/x","last_attempt":"2024-01-01T00:00:00Z","last_status":1}`
	cases := []struct {
		name, method, path, body, token string
		want                            int
		mention                         string
	}{
		{"duplicate key", "POST", "/packages", strings.Replace(manifest("app", "a"), `"version":"2"`, `"version":"2","version":"3"`, 1), "", 400, "duplicate"},
		{"duplicate nested key", "POST", "/packages", strings.Replace(manifest("app", "a"), `"all":true`, `"all":true,"all":false`, 1), "", 400, "duplicate"},
		{"case-mismatched name", "POST", "/packages", strings.Replace(manifest("app", "a"), `"name"`, `"Name"`, 1), "", 400, "/Name"},
		{"invalid UTF-8", "POST", "/packages", strings.Replace(manifest("app", "a"), `"app"`, "\"app\xff\xfe\"", 1), "", 400, "UTF-8"},
		{"lone surrogate", "POST", "/packages", strings.Replace(manifest("app", "a"), `"app"`, `"app\ud800"`, 1), "", 400, "surrogate"},
		{"bidi override in a path", "POST", "/packages", manifest("app", "evil\u202etxt.exe"), "", 400, "U+202E"},
		{"NEL in a path", "POST", "/packages", manifest("app", "a\u0085b"), "", 400, "U+0085"},
		{"zero-width space in a path", "POST", "/packages", manifest("app", "a\u200bb"), "", 400, "U+200B"},
		{"BOM in a name", "POST", "/packages", manifest("\ufeffapp", "a"), "", 400, "U+FEFF"},
		{"NTFS-equal files", "POST", "/packages", fmt.Sprintf(`{"name":"app","version":"2","files":[{"path":"kelvin","size":5,"sha256":%q},{"path":"\u212aelvin","size":5,"sha256":%q}],"assignment":{"all":true}}`, d, d), "", 400, "collides"},
		{"NTFS-equal folders", "POST", "/packages", fmt.Sprintf(`{"name":"app","version":"2","files":[{"path":"Docs/a","size":5,"sha256":%q},{"path":"docs/b","size":5,"sha256":%q}],"assignment":{"all":true}}`, d, d), "", 400, "collides"},
		{"bidi in a custom location", "POST", "/packages", strings.Replace(manifest("app", "a"), `"assignment"`, `"custom_location":"/srv/\u202eabc","assignment"`, 1), "", 400, "U+202E"},
		{"bidi in a policy location", "PUT", "/policies/package-server", `{"linux_location":"/srv/\u202etxt"}`, "", 400, "U+202E"},
		{"invalid UTF-8 in a policy location", "PUT", "/policies/package-server", "{\"linux_location\":\"/srv/\xff\xfe\"}", "", 400, "UTF-8"},
		{"zero-width in a Windows location", "PUT", "/policies/package-server", `{"windows_location":"D:\\Wh\u200barf"}`, "", 400, "U+200B"},
		{"duplicate policy key", "PUT", "/policies/site-server", `{"download_concurrency":2,"download_concurrency":3}`, "", 400, "duplicate"},
		{"case-mismatched policy key", "PUT", "/policies/site-server", `{"Download_Concurrency":2}`, "", 400, "/Download_Concurrency"},
		{"states of a package not assigned", "POST", "/agent/ps-a/package-states", `{"states":[{"package_id":"` + onlyB + `","state":"ready","path":"/evil"}]}`, credA, 403, "not assigned"},
		{"states, one of them not assigned", "POST", "/agent/ps-a/package-states", `{"states":[{"package_id":"` + all + `","state":"ready"},{"package_id":"` + onlyB + `","state":"ready"}]}`, credA, 403, "not assigned"},
		{"bidi in a state's path", "POST", "/agent/ps-a/package-states", `{"states":[{"package_id":"` + all + `","state":"ready","path":"/srv/\u202eabc"}]}`, credA, 400, "U+202E"},
		{"duplicate key in states", "POST", "/agent/ps-a/package-states", `{"states":[],"states":[]}`, credA, 400, "duplicate"},
		{"bidi in an event's path", "POST", "/agent/ps-a/events", strings.Replace(event, "/srv/x", "/srv/\u202ex", 1), credA, 400, "U+202E"},
		{"case-mismatched event key", "POST", "/agent/ps-a/events", strings.Replace(event, "last_status", "Last_Status", 1), credA, 400, "/Last_Status"},
		{"bidi in a client token name", "POST", "/client-tokens", `{"name":"ci\u202e"}`, "", 400, "client token name"},
		{"re-upload with other bytes", "PUT", "/blobs/" + d, "HELLO", "", 400, "does not match"},
		{"re-upload cut to another size", "PUT", "/blobs/" + d, "hell", "", 400, "stored blob has 5"},
		{"a server URL with a bidi control", "GET", "/agent/ps-a/config?wait=0&url=" + url.QueryEscape("http://ps\u202e:1"), "", credA, 400, "U+202E"},
		{"a server URL that is not one", "GET", "/agent/ps-a/config?wait=0&url=" + url.QueryEscape("ftp://ps:1/x"), "", credA, 400, "http(s)"},
	}
	f.agentConfig("ps-a", credA) // its first contact: later ones only move it
	before := f.snapshot("ps-a")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := []string{}
			if c.token != "" {
				tok = append(tok, c.token)
			}
			code, body := f.do(c.method, c.path, strings.NewReader(c.body), tok...)
			if code != c.want {
				t.Fatalf("got %d %s, want %d", code, body, c.want)
			}
			var e api.Error
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, c.mention) {
				t.Fatalf("error %q does not mention %q", body, c.mention)
			}
			if after := f.snapshot("ps-a"); after != before {
				t.Fatalf("state changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	// The blob kept its bytes.
	if code, body := f.do("GET", "/blobs/"+d, nil); code != 200 || body != "hello" {
		t.Fatalf("blob after refused re-uploads: %d %q", code, body)
	}
	// The same bytes again are fine.
	if code, body := f.do("PUT", "/blobs/"+d, strings.NewReader("hello")); code != 200 {
		t.Fatalf("re-upload of the same bytes: %d %s", code, body)
	}
}

func (f *fixture) createPackage(m api.PackageManifest) string {
	f.t.Helper()
	data, _ := json.Marshal(m)
	code, body := f.do("POST", "/packages", strings.NewReader(string(data)))
	if code != 201 {
		f.t.Fatalf("create package: %d %s", code, body)
	}
	var p api.Package
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		f.t.Fatal(err)
	}
	return p.ID
}

// TestTruncatedBodiesAre400: a body that ends before its Content-Length
// (the client closed its side) is a 400, on an upload and on a JSON body,
// and nothing is kept.
func TestTruncatedBodiesAre400(t *testing.T) {
	f := newFixture(t)
	content := strings.Repeat("x", 1000)
	d := digest([]byte(content))
	host := strings.TrimPrefix(f.url, "http://")
	for _, c := range []struct{ name, method, path, body string }{
		{"blob upload", "PUT", "/blobs/" + d, content[:400]},
		{"manifest", "POST", "/packages", `{"name":"app","version":"1",`},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "%s %s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n%s",
				c.method, api.Prefix, c.path, host, f.token, c.body)
			conn.(*net.TCPConn).CloseWrite()
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to a cut body: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 || !strings.Contains(string(body), "cut short") {
				t.Fatalf("cut body: %d %s, want 400 saying it was cut short", resp.StatusCode, body)
			}
		})
	}
	if code, _ := f.do("HEAD", "/blobs/"+d, nil); code != 404 {
		t.Fatalf("a cut upload left a blob: HEAD %d", code)
	}
	if n := f.packageCount(); n != 0 {
		t.Fatalf("%d packages after a cut manifest", n)
	}
}

// TestAlertsOfOneServerAreLimited: a server's new alerts past
// catalog.AlertsPerServer within the window are counted on one "too many
// alerts" alert; a repeat of an unread alert bumps its counter, even past
// the limit; another server is not affected.
func TestAlertsOfOneServerAreLimited(t *testing.T) {
	f := newFixture(t)
	credA := f.enroll("ps-a", "linux")
	credB := f.enroll("ps-b", "linux")
	refused := func(server, cred, target string) {
		t.Helper()
		ev := api.LocationStatus{StoragePath: target, LastAttempt: time.Now().UTC(), LastStatus: 0x100}
		data, _ := json.Marshal(ev)
		if code, body := f.agentDo("POST", "/agent/"+server+"/events", string(data), cred); code != 204 {
			t.Fatalf("event: %d %s", code, body)
		}
	}
	for i := 0; i < catalog.AlertsPerServer+15; i++ {
		refused("ps-a", credA, fmt.Sprintf("/srv/target-%d", i))
	}
	refused("ps-a", credA, "/srv/target-0") // a repeat of the first
	refused("ps-b", credB, "/srv/b")
	alerts, err := f.cat.Alerts(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	var ofA, ofB, tooMany, first int
	for _, a := range alerts.Alerts {
		switch a.Server {
		case "ps-a":
			ofA++
			if strings.Contains(a.Message, "new alerts within") {
				tooMany = a.Count
			}
			if strings.Contains(a.Message, "/srv/target-0 ") || strings.HasSuffix(a.Message, "/srv/target-0") || strings.Contains(a.Message, "to /srv/target-0:") {
				first = a.Count
			}
		case "ps-b":
			ofB++
		}
	}
	if ofA != catalog.AlertsPerServer+1 || tooMany != 15 || first != 2 || ofB != 1 {
		for _, a := range alerts.Alerts {
			t.Logf("%s ×%d: %s", a.Server, a.Count, a.Message)
		}
		t.Fatalf("ps-a has %d alerts (want %d), the too-many one counts %d (want 15), the first %d (want 2); ps-b has %d (want 1)",
			ofA, catalog.AlertsPerServer+1, tooMany, first, ofB)
	}
}
