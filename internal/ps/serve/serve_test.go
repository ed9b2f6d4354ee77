package serve_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock/clocktest"
	"github.com/wharf-project/wharf/internal/ps/pstest"
	"github.com/wharf-project/wharf/internal/ps/serve"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/urlsign"
	"github.com/wharf-project/wharf/internal/wharf"
)

const secret = "top secret: outside every package"

type fixture struct {
	srv               *httptest.Server
	st                *store.Store
	key               []byte
	clock             *clocktest.Instant
	public, signed    string // ready package ids
	downloading       string
	mtime             time.Time
	content, nested   []byte
	root, outsideFile string
}

// newFixture builds a store root with a public and a signed ready package,
// one still downloading, a secret next to the packages and one outside the
// root, and symlinks planted in the public package pointing at them.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "state", "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fx := &fixture{st: st, key: []byte("0123456789abcdef0123456789abcdef"), clock: clocktest.NewInstant(),
		content: []byte("0123456789 the setup program"), nested: []byte("nested file"),
		root: filepath.Join(dir, "Package Delivery"), mtime: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
	outside := filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o755)
	fx.outsideFile = filepath.Join(outside, "secret")
	os.WriteFile(fx.outsideFile, []byte(secret), 0o644)
	os.MkdirAll(fx.root, 0o755)
	os.WriteFile(filepath.Join(fx.root, "secret"), []byte(secret), 0o644)

	add := func(signed bool, state string) string {
		id := string(wharf.NewPackageID())
		pdir := filepath.Join(fx.root, id)
		os.MkdirAll(filepath.Join(pdir, "docs", "sub"), 0o755)
		os.MkdirAll(filepath.Join(pdir, "weird"), 0o755)
		os.WriteFile(filepath.Join(pdir, "setup.exe"), fx.content, 0o644)
		os.WriteFile(filepath.Join(pdir, "docs", "sub", "a b.txt"), fx.nested, 0o644)
		// Symlinks planted by someone: a file and a folder pointing out.
		if err := os.Symlink(fx.outsideFile, filepath.Join(pdir, "link")); err != nil {
			t.Skipf("symlinks: %v", err)
		}
		os.Symlink(outside, filepath.Join(pdir, "linkdir"))
		os.Symlink("../secret", filepath.Join(pdir, "rel-link"))
		file := func(path string, content []byte) store.File {
			return store.File{File: wharf.File{Path: path, Size: int64(len(content)), SHA256: wharf.Digest(pstest.Sum(content))}}
		}
		files := []store.File{
			file("setup.exe", fx.content),
			file("docs/sub/a b.txt", fx.nested),
			// The manifest lists these names; the disk has symlinks or a
			// folder there instead.
			file("link", []byte(secret)),
			file("linkdir/secret", []byte(secret)),
			file("rel-link", []byte(secret)),
			file("weird", nil),
		}
		p := store.Package{ID: id, Name: "p", Version: "1", Signed: signed, Root: fx.root, Path: pdir,
			State: api.StateDownloading, Size: 1, FileCount: len(files), Files: files}
		if err := st.Put(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		if state == api.StateReady {
			mt := map[string]time.Time{}
			for _, f := range files {
				mt[f.Path] = fx.mtime
			}
			if err := st.MarkReady(context.Background(), id, mt, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	fx.public = add(false, api.StateReady)
	fx.signed = add(true, api.StateReady)
	fx.downloading = add(false, api.StateDownloading)
	fx.srv = httptest.NewServer(serve.New(st, fx.key, fx.clock, pstest.Logger(t)))
	t.Cleanup(fx.srv.Close)
	return fx
}

// raw sends a request line exactly as given, so no client cleans the path.
func (fx *fixture) raw(t *testing.T, method, target string, header ...string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", fx.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: ps\r\nConnection: close\r\n", method, target)
	for _, h := range header {
		fmt.Fprintf(c, "%s\r\n", h)
	}
	fmt.Fprintf(c, "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func TestTraversalAndNonFilesAre404(t *testing.T) {
	fx := newFixture(t)
	id := fx.public
	for _, target := range []string{
		"/packages/" + id + "/../secret",
		"/packages/" + id + "/%2e%2e/secret",
		"/packages/" + id + "/%2E%2E/secret",
		"/packages/" + id + "/..%2fsecret",
		"/packages/" + id + "/%2e%2e%2fsecret",
		"/packages/" + id + "/docs/../../secret",
		"/packages/" + id + "/docs/sub/../../../outside/secret",
		"/packages/" + id + "/..%5csecret",
		"/packages/" + id + `/..\secret`,
		"/packages/" + id + "//secret",
		"/packages/" + id + "/docs//sub/a%20b.txt",
		"/packages/" + id + "/./setup.exe",
		"/packages/" + id + "/%2Fetc%2Fpasswd",
		"/packages/" + id + "/C:/secret",
		"/packages/../" + id + "/setup.exe",
		"/packages/%2e%2e/secret",
		"/packages/" + id + "/link",           // symlink to a file outside
		"/packages/" + id + "/linkdir/secret", // through a symlinked folder
		"/packages/" + id + "/rel-link",       // relative symlink up
		"/packages/" + id + "/docs",           // a folder
		"/packages/" + id + "/docs/",
		"/packages/" + id + "/docs/sub",
		"/packages/" + id + "/weird", // a folder where the manifest has a file
		"/packages/" + id + "/",
		"/packages/" + id,
		"/packages/" + id + "/nope.txt",
		"/packages/" + id + "/SETUP.EXE",
		"/packages/0b0b0b0b-0000-4000-8000-000000000000/setup.exe", // unknown package
		"/packages/not-a-uuid/setup.exe",
		"/packages/" + fx.downloading + "/setup.exe", // not ready
		"/",
		"/secret",
		"/packages/",
	} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := fx.raw(t, method, target)
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s %s: got HTTP %d, want 404 (or 400)", method, target, resp.StatusCode)
			}
			if strings.Contains(body, "secret:") {
				t.Errorf("%s %s: served the secret", method, target)
			}
		}
	}
}

func TestServesFiles(t *testing.T) {
	fx := newFixture(t)
	base := fx.srv.URL + "/packages/" + fx.public + "/"
	etag := `"` + pstest.Sum(fx.content) + `"`

	resp, body := get(t, "GET", base+"setup.exe")
	if resp.StatusCode != 200 || body != string(fx.content) {
		t.Fatalf("GET: HTTP %d, body %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("ETag"); got != etag {
		t.Errorf("ETag: got %s, want %s", got, etag)
	}
	if got := resp.Header.Get("Last-Modified"); got != fx.mtime.Format(http.TimeFormat) {
		t.Errorf("Last-Modified: got %s, want %s", got, fx.mtime.Format(http.TimeFormat))
	}
	if got := resp.Header.Get("Accept-Ranges"); got != "bytes" {
		t.Errorf("Accept-Ranges: got %q", got)
	}

	resp, body = get(t, "GET", base+"docs/sub/a%20b.txt")
	if resp.StatusCode != 200 || body != string(fx.nested) {
		t.Errorf("nested file: HTTP %d, body %q", resp.StatusCode, body)
	}

	resp, body = get(t, "HEAD", base+"setup.exe")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len(fx.content)) || resp.Header.Get("ETag") != etag {
		t.Errorf("HEAD: HTTP %d, length %d, etag %s, body %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("ETag"), body)
	}

	resp, body = get(t, "GET", base+"setup.exe", "Range", "bytes=2-5")
	if resp.StatusCode != 206 || body != string(fx.content[2:6]) {
		t.Errorf("Range: HTTP %d, body %q, want 206 %q", resp.StatusCode, body, fx.content[2:6])
	}
	if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes 2-5/%d", len(fx.content)); got != want {
		t.Errorf("Content-Range: got %q, want %q", got, want)
	}
	resp, body = get(t, "GET", base+"setup.exe", "Range", "bytes=20-")
	if resp.StatusCode != 206 || body != string(fx.content[20:]) {
		t.Errorf("open Range: HTTP %d, body %q", resp.StatusCode, body)
	}

	resp, body = get(t, "GET", base+"setup.exe", "If-None-Match", etag)
	if resp.StatusCode != 304 || body != "" {
		t.Errorf("If-None-Match: HTTP %d, body %q, want 304", resp.StatusCode, body)
	}
	resp, _ = get(t, "GET", base+"setup.exe", "If-None-Match", `"other"`)
	if resp.StatusCode != 200 {
		t.Errorf("If-None-Match other: HTTP %d, want 200", resp.StatusCode)
	}
	resp, _ = get(t, "GET", base+"setup.exe", "If-Range", `"other"`, "Range", "bytes=0-1")
	if resp.StatusCode != 200 {
		t.Errorf("If-Range stale: HTTP %d, want 200 (whole file)", resp.StatusCode)
	}
	resp, _ = get(t, "POST", base+"setup.exe")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: HTTP %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestSignedPackages(t *testing.T) {
	fx := newFixture(t)
	base := fx.srv.URL + "/packages/" + fx.signed + "/setup.exe"
	now := fx.clock.Now()
	valid := urlsign.Query(fx.key, fx.signed, now.Add(time.Hour))
	tampered := strings.Replace(valid, "sig=", "sig=00", 1)
	expired := urlsign.Query(fx.key, fx.signed, now.Add(-time.Second))
	otherPackage := urlsign.Query(fx.key, fx.public, now.Add(time.Hour))
	otherKey := urlsign.Query([]byte("another key"), fx.signed, now.Add(time.Hour))
	longer := strings.Replace(valid, "exp=", "exp=1", 1) // extended expiry, same sig

	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"valid", valid, 200},
		{"missing", "", 403},
		{"tampered signature", tampered, 403},
		{"tampered expiry", longer, 403},
		{"expired", expired, 403},
		{"other package's signature", otherPackage, 403},
		{"other key", otherKey, 403},
	} {
		resp, body := get(t, "GET", base+"?"+tc.query)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: got HTTP %d, want %d (%s)", tc.name, resp.StatusCode, tc.want, body)
		}
		if tc.want == 200 && body != string(fx.content) {
			t.Errorf("%s: wrong body %q", tc.name, body)
		}
	}
	// A public package needs no signature.
	if resp, _ := get(t, "GET", fx.srv.URL+"/packages/"+fx.public+"/setup.exe"); resp.StatusCode != 200 {
		t.Errorf("public package: HTTP %d", resp.StatusCode)
	}
}

func TestDamagedFileIsNotServed(t *testing.T) {
	fx := newFixture(t)
	os.WriteFile(filepath.Join(fx.root, fx.public, "setup.exe"), []byte("short"), 0o644)
	resp, body := get(t, "GET", fx.srv.URL+"/packages/"+fx.public+"/setup.exe")
	if resp.StatusCode == 200 || strings.Contains(body, "short") {
		t.Errorf("damaged file: HTTP %d, body %q", resp.StatusCode, body)
	}
}

func get(t *testing.T, method, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
