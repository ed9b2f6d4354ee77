package httpapi_test

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
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/blobs"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/ns/httpapi"
	"github.com/wharf-project/wharf/internal/ns/notify"
	"github.com/wharf-project/wharf/internal/ns/sqlstore"
)

type fixture struct {
	t     testing.TB
	dir   string
	url   string
	token string
	cat   *catalog.Catalog
	logs  *syncBuffer // the API's log, Info and above
}

// syncBuffer is a bytes.Buffer safe for the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T) *fixture { return newBenchFixture(t) }

func newBenchFixture(t testing.TB) *fixture {
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
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	cat := catalog.New(store, bs, notify.NewLocal(), time.Now, log)
	tok, _, err := cat.InitAdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	max := int64(1 << 20)
	if _, bench := t.(*testing.B); bench {
		max = 1 << 30
	}
	srv := httptest.NewServer(httpapi.New(cat, bs, log, httpapi.Options{MaxBlobBytes: max}).Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, dir: dir, url: srv.URL, token: tok, cat: cat, logs: logs}
}

// waitPolls waits until n long polls wait for a change: each has read its
// configuration, so a change made now reaches it.
func (f *fixture) waitPolls(n int) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.cat.PollsWaiting() < n {
		if time.Now().After(deadline) {
			f.t.Fatalf("%d long polls waiting after 10 s, want %d", f.cat.PollsWaiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// do sends a request with the admin token unless token is given.
func (f *fixture) do(method, path string, body io.Reader, token ...string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+api.Prefix+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	tok := f.token
	if len(token) > 0 {
		tok = token[0]
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (f *fixture) putBlob(content string) string {
	f.t.Helper()
	d := digest([]byte(content))
	if code, body := f.do("PUT", "/blobs/"+d, strings.NewReader(content)); code/100 != 2 {
		f.t.Fatalf("put blob: %d %s", code, body)
	}
	return d
}

func manifestJSON(t *testing.T, m api.PackageManifest) io.Reader {
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(data)
}

func (f *fixture) packageCount() int {
	f.t.Helper()
	list, err := f.cat.ListPackages(context.Background(), "", "")
	if err != nil {
		f.t.Fatal(err)
	}
	return len(list)
}

func TestHostileManifestsAreRefusedAndStoreNothing(t *testing.T) {
	f := newFixture(t)
	d := f.putBlob("hello")
	good := func(path string) api.PackageManifest {
		return api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true},
			Files: []api.File{{Path: path, Size: 5, SHA256: d}}}
	}
	cases := []struct {
		name    string
		m       api.PackageManifest
		mention string
	}{
		{"parent", good("../x"), "../x"},
		{"absolute", good("/etc/passwd"), "/etc/passwd"},
		{"inner parent", good("a/../../b"), "a/../../b"},
		{"drive", good(`C:\x`), `"C:\\x"`},
		{"backslash parent", good(`a\..\..\b`), `"a\\..\\..\\b"`},
		{"nul", good("a\x00b"), "NUL"},
		{"dot", good("./a"), "./a"},
		{"empty element", good("a//b"), "a//b"},
		{"reserved name", good("dir/con.txt"), "reserved"},
		{"missing blob", api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true},
			Files: []api.File{{Path: "a", Size: 5, SHA256: digest([]byte("never uploaded"))}}}, "was not uploaded"},
		{"wrong size", api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true},
			Files: []api.File{{Path: "a", Size: 6, SHA256: d}}}, "size 6"},
		{"bad digest", api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true},
			Files: []api.File{{Path: "a", Size: 5, SHA256: "xyz"}}}, "sha256"},
		{"case collision", api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true},
			Files: []api.File{{Path: "Readme", Size: 5, SHA256: d}, {Path: "README", Size: 5, SHA256: d}}}, "case-insensitive"},
		{"duplicate", api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true},
			Files: []api.File{{Path: "a", Size: 5, SHA256: d}, {Path: "a", Size: 5, SHA256: d}}}, "twice"},
		{"file and folder", api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true},
			Files: []api.File{{Path: "a", Size: 5, SHA256: d}, {Path: "a/b", Size: 5, SHA256: d}}}, "not a folder"},
		{"no assignment", api.PackageManifest{Name: "app", Version: "1",
			Files: []api.File{{Path: "a", Size: 5, SHA256: d}}}, "assignment"},
		{"bad server name", api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{Servers: []string{"../ps"}},
			Files: []api.File{{Path: "a", Size: 5, SHA256: d}}}, "server name"},
		{"relative custom location", api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true},
			CustomLocation: "pkgs", Files: []api.File{{Path: "a", Size: 5, SHA256: d}}}, "custom_location"},
		{"name with slash", api.PackageManifest{Name: "a/b", Version: "1", Assignment: api.Assignment{All: true},
			Files: []api.File{{Path: "a", Size: 5, SHA256: d}}}, "name"},
		{"no files", api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true}}, "at least one file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := f.do("POST", "/packages", manifestJSON(t, c.m))
			if code != http.StatusBadRequest {
				t.Fatalf("got %d %s, want 400", code, body)
			}
			var e api.Error
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("error body %q: %v", body, err)
			}
			if !strings.Contains(e.Error, c.mention) {
				t.Errorf("error %q does not mention %q", e.Error, c.mention)
			}
			if n := f.packageCount(); n != 0 {
				t.Fatalf("%d packages stored after a refused manifest", n)
			}
		})
	}
}

func TestMalformedRequests(t *testing.T) {
	f := newFixture(t)
	d := f.putBlob("hello")
	valid := fmt.Sprintf(`{"name":"app","version":"1","assignment":{"all":true},"files":[{"path":"a","size":5,"sha256":%q}]}`, d)
	cases := []struct {
		name, method, path, body string
		token                    []string
		want                     int
	}{
		{"unknown field", "POST", "/packages", strings.Replace(valid, `"name"`, `"colour":"red","name"`, 1), nil, 400},
		{"trailing data", "POST", "/packages", valid + `{}`, nil, 400},
		{"not json", "POST", "/packages", `name=app`, nil, 400},
		{"oversized manifest", "POST", "/packages", `{"name":"` + strings.Repeat("a", httpapi.MaxManifestBytes) + `"}`, nil, 413},
		{"no token", "GET", "/servers", "", []string{""}, 401},
		{"no token on an upload", "POST", "/packages", valid, []string{""}, 401},
		{"wrong token", "GET", "/packages", "", []string{"wharf-admin-wrong"}, 401},
		{"wrong token on upload", "PUT", "/blobs/" + digest([]byte("x")), "x", []string{"nope"}, 401},
		{"blob body does not match name", "PUT", "/blobs/" + digest([]byte("expected")), "something else", nil, 400},
		{"oversized blob", "PUT", "/blobs/" + digest([]byte("y")), strings.Repeat("y", 2<<20), nil, 413},
		{"bad digest name", "PUT", "/blobs/NOTHEX", "x", nil, 400},
		{"unknown package", "GET", "/packages/6f1c2a4e-0b1d-4c3e-9f00-0123456789ab", "", nil, 404},
		{"malformed package id", "GET", "/packages/..%2f..%2fetc", "", nil, 404},
		{"unknown route", "GET", "/nothing", "", nil, 404},
		{"enroll with bad token", "POST", "/agent/enroll", `{"token":"x","name":"ps1","os":"linux","url":"http://127.0.0.1:1"}`, []string{""}, 401},
		{"agent route with admin token", "GET", "/agent/ps1/config", "", nil, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			code, resp := f.do(c.method, c.path, body, c.token...)
			if code != c.want {
				t.Fatalf("got %d %s, want %d", code, resp, c.want)
			}
			var e api.Error
			if err := json.Unmarshal([]byte(resp), &e); err != nil || e.Error == "" {
				t.Errorf("error body %q is not {\"error\": ...}", resp)
			}
		})
	}
	if n := f.packageCount(); n != 0 {
		t.Fatalf("%d packages stored by malformed requests", n)
	}
	if code, _ := f.do("HEAD", "/blobs/"+digest([]byte("expected")), nil); code != 404 {
		t.Fatalf("blob kept after a mismatching upload: HEAD answered %d", code)
	}
}

func TestCreateIsIdempotentAndConflictsOnOtherContent(t *testing.T) {
	f := newFixture(t)
	d := f.putBlob("hello")
	m := api.PackageManifest{Name: "app", Version: "1", Assignment: api.Assignment{All: true},
		Files: []api.File{{Path: "bin/app", Size: 5, SHA256: d}}}
	code, first := f.do("POST", "/packages", manifestJSON(t, m))
	if code != 201 {
		t.Fatalf("create: %d %s", code, first)
	}
	code, second := f.do("POST", "/packages", manifestJSON(t, m))
	if code != 200 {
		t.Fatalf("identical re-create: %d %s, want 200", code, second)
	}
	var a, b api.Package
	json.Unmarshal([]byte(first), &a)
	json.Unmarshal([]byte(second), &b)
	if a.ID == "" || a.ID != b.ID {
		t.Fatalf("identical re-create gave id %q, first was %q", b.ID, a.ID)
	}
	m.Files[0].Path = "bin/other"
	if code, body := f.do("POST", "/packages", manifestJSON(t, m)); code != 409 {
		t.Fatalf("same name and version, other content: %d %s, want 409", code, body)
	}
}

func TestAgentIsolation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	credOf := func(name string) string {
		tok, err := f.cat.MintEnrollToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e, err := f.cat.Enroll(ctx, api.EnrollRequest{Token: tok.Token, Name: name, OS: "linux", URL: "http://127.0.0.1:9"})
		if err != nil {
			t.Fatal(err)
		}
		return e.Credential
	}
	a, _ := credOf("ps-a"), credOf("ps-b")
	onlyB := f.putBlob("for b only")
	m := api.PackageManifest{Name: "b-only", Version: "1", Assignment: api.Assignment{Servers: []string{"ps-b"}},
		Files: []api.File{{Path: "f", Size: 10, SHA256: onlyB}}}
	code, body := f.do("POST", "/packages", manifestJSON(t, m))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var p api.Package
	json.Unmarshal([]byte(body), &p)

	if code, _ := f.do("GET", "/agent/ps-a/config?wait=0", nil, a); code != 200 {
		t.Fatalf("own config: %d", code)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/agent/ps-b/config?wait=0", ""},
		{"POST", "/agent/ps-b/package-states", `{"states":[]}`},
		{"GET", "/agent/ps-b/packages/" + p.ID, ""},
	} {
		var r io.Reader
		if c.body != "" {
			r = strings.NewReader(c.body)
		}
		if code, body := f.do(c.method, c.path, r, a); code != 403 {
			t.Errorf("ps-a %s %s: %d %s, want 403", c.method, c.path, code, body)
		}
	}
	if code, _ := f.do("GET", "/agent/ps-a/packages/"+p.ID, nil, a); code != 404 {
		t.Errorf("ps-a reading a package not assigned to it: %d, want 404", code)
	}
	if code, _ := f.do("GET", "/blobs/"+onlyB, nil, a); code != 404 {
		t.Errorf("ps-a reading a blob of a package not assigned to it: %d, want 404", code)
	}
	if code, _ := f.do("POST", "/packages", manifestJSON(t, m), a); code != 403 {
		t.Errorf("a server credential used on an admin route: %d, want 403", code)
	}
}

func TestEnrollTokenIsOneTime(t *testing.T) {
	f := newFixture(t)
	code, body := f.do("POST", "/enroll-tokens", nil)
	if code != 201 {
		t.Fatalf("mint: %d %s", code, body)
	}
	var tok api.EnrollToken
	json.Unmarshal([]byte(body), &tok)
	req := func(name string) (int, string) {
		return f.do("POST", "/agent/enroll", strings.NewReader(fmt.Sprintf(
			`{"token":%q,"name":%q,"os":"linux","url":"http://127.0.0.1:8081"}`, tok.Token, name)), "")
	}
	if code, body := req("ps1"); code != 201 {
		t.Fatalf("enroll: %d %s", code, body)
	}
	if code, body := req("ps2"); code != 401 {
		t.Fatalf("second use of the token: %d %s, want 401", code, body)
	}
}

func TestLongPollWakesOnlyAffectedServer(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cred := map[string]string{}
	for _, n := range []string{"ps-a", "ps-b"} {
		tok, _ := f.cat.MintEnrollToken(ctx)
		e, err := f.cat.Enroll(ctx, api.EnrollRequest{Token: tok.Token, Name: n, OS: "linux", URL: "http://127.0.0.1:9"})
		if err != nil {
			t.Fatal(err)
		}
		cred[n] = e.Credential
	}
	etag := func(name string) string {
		req, _ := http.NewRequest("GET", f.url+api.Prefix+"/agent/"+name+"/config?wait=0", nil)
		req.Header.Set("Authorization", "Bearer "+cred[name])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	etagA, etagB := etag("ps-a"), etag("ps-b")

	type result struct {
		code  int
		after time.Duration
	}
	poll := func(name, tag string, wait int) chan result {
		ch := make(chan result, 1)
		go func() {
			start := time.Now()
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s/agent/%s/config?wait=%d", f.url, api.Prefix, name, wait), nil)
			req.Header.Set("Authorization", "Bearer "+cred[name])
			req.Header.Set("If-None-Match", tag)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				ch <- result{code: -1}
				return
			}
			resp.Body.Close()
			ch <- result{resp.StatusCode, time.Since(start)}
		}()
		return ch
	}
	a, b := poll("ps-a", etagA, 30), poll("ps-b", etagB, 2)
	f.waitPolls(2)
	d := f.putBlob("new")
	m := api.PackageManifest{Name: "for-a", Version: "1", Assignment: api.Assignment{Servers: []string{"ps-a"}},
		Files: []api.File{{Path: "f", Size: 3, SHA256: d}}}
	if code, body := f.do("POST", "/packages", manifestJSON(t, m)); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	ra := <-a
	if ra.code != 200 || ra.after > 5*time.Second {
		t.Fatalf("ps-a poll: status %d after %s, want 200 soon after the assignment", ra.code, ra.after)
	}
	if rb := <-b; rb.code != 304 {
		t.Fatalf("ps-b poll: status %d, want 304 (its config did not change)", rb.code)
	}
	if etag("ps-b") != etagB {
		t.Fatal("ps-b's ETag changed though nothing assigned to it changed")
	}
}

// TestBlobProbeIsNotARefusal: a publish asks with HEAD whether the NS has
// each blob; "not yet" is the protocol, not a refusal, and is not logged
// at Info (50,754 such lines for 10,000 packages in issue 17). A real
// refusal still is.
func TestBlobProbeIsNotARefusal(t *testing.T) {
	f := newFixture(t)
	missing := strings.Repeat("ab", 32)
	if code, _ := f.do(http.MethodHead, "/blobs/"+missing, nil); code != http.StatusNotFound {
		t.Fatalf("HEAD of a missing blob: %d, want 404", code)
	}
	if strings.Contains(f.logs.String(), "request refused") {
		t.Errorf("a HEAD probe for a missing blob was logged as a refusal:\n%s", f.logs.String())
	}
	if code, _ := f.do(http.MethodGet, "/blobs/"+missing, nil, "wrong-token"); code != http.StatusUnauthorized {
		t.Fatalf("GET with a wrong token: %d, want 401", code)
	}
	if !strings.Contains(f.logs.String(), "request refused") {
		t.Errorf("a refused request was not logged:\n%s", f.logs.String())
	}
}
