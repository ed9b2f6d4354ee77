package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/client"
	"github.com/wharf-project/wharf/internal/client/clienttest"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
	"github.com/wharf-project/wharf/internal/urlsign"
	"github.com/wharf-project/wharf/internal/wharf"
)

// bigPath is a file large enough to be sent in several chunks.
const bigPath = "big/blob.bin"

// testFiles returns about 50 files in nested folders: empty, small and large
// ones, with names that need escaping in a URL.
func testFiles() map[string][]byte {
	files := map[string][]byte{
		"empty.txt":                     {},
		"one.byte":                      {'x'},
		"README":                        []byte("read me\n"),
		"with space/and #hash%25.txt":   []byte("escaped names\n"),
		"ünïcode/файл.txt":              []byte("unicode names\n"),
		"deep/a/b/c/d/e/f/g/h/leaf.bin": pattern(1000, 7),
		bigPath:                         pattern(300_000, 1),
	}
	for i := range 44 {
		files[fmt.Sprintf("dir%d/sub%d/file%02d.dat", i%5, i%3, i)] = pattern(i*997+13, byte(i))
	}
	return files
}

// pattern returns n bytes that differ from file to file.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed ^ byte(i>>8)
	}
	return b
}

type fixture struct {
	ns       *nstest.NS // the real Notification Server
	s1, s2   nstest.Server
	ps1, ps2 *clienttest.PS
	pkg      api.Package
	files    map[string][]byte
	cat      *apiclient.Client // with a client token: what wharf get holds
	sleeps   []time.Duration
	mu       sync.Mutex
}

// newFixture runs a real NS with two Package Servers enrolled (fakes that
// serve what they are given, checking the NS's signatures) and publishes
// demo@1.0 with testFiles, signed, ready on both. The client reads with a
// client token.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{ns: nstest.New(t), ps1: clienttest.NewPS(t, "ps1"), ps2: clienttest.NewPS(t, "ps2"), files: testFiles()}
	fx.s1, fx.s2 = fx.ns.Enroll("ps1", fx.ps1.URL), fx.ns.Enroll("ps2", fx.ps2.URL)
	fx.ps1.RequireSignature(fx.s1.SigningKey)
	fx.ps2.RequireSignature(fx.s2.SigningKey)
	fx.pkg = fx.publish("demo", "1.0", fx.ps1, fx.ps2)
	c, err := apiclient.New(fx.ns.URL, fx.ns.ClientToken("tests"), nil)
	if err != nil {
		t.Fatal(err)
	}
	fx.cat = c
	return fx
}

// publish publishes fx.files as name@version, served (and reported ready)
// by the given Package Servers.
func (fx *fixture) publish(name, version string, on ...*clienttest.PS) api.Package {
	p := fx.ns.Publish(name, version, fx.files)
	for _, ps := range on {
		ps.Put(p.ID, fx.files)
		s := fx.s1
		if ps == fx.ps2 {
			s = fx.s2
		}
		fx.ns.Ready(s, p.ID)
	}
	return p
}

// options returns options whose sleeps are recorded instead of waited.
func (fx *fixture) options(t *testing.T) client.Options {
	return client.Options{
		Parallel: 3,
		Log:      slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Sleep: func(ctx context.Context, d time.Duration) error {
			fx.mu.Lock()
			fx.sleeps = append(fx.sleeps, d)
			fx.mu.Unlock()
			return ctx.Err()
		},
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// checkTree fails unless dest holds exactly files, byte for byte, and no
// staging folder.
func checkTree(t *testing.T, dest string, files map[string][]byte) {
	t.Helper()
	got := map[string]bool{}
	err := filepath.WalkDir(dest, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, ".wharf-get-") {
			t.Errorf("staging folder left behind: %s", rel)
			return filepath.SkipDir
		}
		if de.IsDir() {
			return nil
		}
		got[rel] = true
		want, ok := files[rel]
		if !ok {
			t.Errorf("unexpected file %s", rel)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, want) {
			t.Errorf("file %s: got %d bytes (sha256 %s), want %d bytes (sha256 %s)", rel, len(data), sum(data), len(want), sum(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range files {
		if !got[p] {
			t.Errorf("file %s missing", p)
		}
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func totalBytes(files map[string][]byte) int64 {
	var n int64
	for _, b := range files {
		n += int64(len(b))
	}
	return n
}

func TestGetHappyPath(t *testing.T) {
	fx := newFixture(t)
	dest := filepath.Join(t.TempDir(), "new", "dest")
	res, err := client.Get(t.Context(), fx.cat, "demo", dest, fx.options(t))
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, dest, fx.files)
	want := client.Result{
		PackageID: fx.pkg.ID, Name: "demo", Version: "1.0", Dest: dest,
		Files: len(fx.files), Bytes: totalBytes(fx.files), DownloadedBytes: totalBytes(fx.files),
		Codebases: []client.CodebaseBytes{
			{Server: "ps1", URL: fx.ps1.URL + "/packages/" + fx.pkg.ID + "/", Bytes: totalBytes(fx.files)},
			{Server: "ps2", URL: fx.ps2.URL + "/packages/" + fx.pkg.ID + "/", Bytes: 0},
		},
	}
	if fmt.Sprint(*res) != fmt.Sprint(want) {
		t.Errorf("result:\n got %+v\nwant %+v", *res, want)
	}
	// Every file but the empty one comes from the first codebase.
	if n := len(fx.ps1.Requests()); n != len(fx.files)-1 {
		t.Errorf("ps1 got %d requests, want %d", n, len(fx.files)-1)
	}
	if n := len(fx.ps2.Requests()); n != 0 {
		t.Errorf("ps2 got %d requests, want 0", n)
	}
	if m := fx.ps1.MaxInFlight(); m > 3 {
		t.Errorf("ps1 served %d requests at once, want at most --parallel 3", m)
	}
}

// TestSignedQueryAndEscaping: every file of a signed package is asked for
// with the NS's signature (the fake Package Server checks it with the key
// the NS gave it, and refuses anything else), names escaped.
func TestSignedQueryAndEscaping(t *testing.T) {
	fx := newFixture(t)
	pkg := fx.publish("signed", "1", fx.ps1)
	if pkg.Public || !pkg.Signed {
		t.Fatalf("published %+v, want a signed package", pkg.PackageSummary)
	}
	dest := t.TempDir()
	if _, err := client.Get(t.Context(), fx.cat, "signed", dest, fx.options(t)); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dest, fx.files)
	reqs := fx.ps1.Requests()
	if len(reqs) == 0 {
		t.Fatal("no request reached the package server")
	}
	for _, r := range reqs {
		q, _ := url.ParseQuery(r.Query)
		if err := urlsign.Check(fx.s1.SigningKey, pkg.ID, q, time.Now()); err != nil {
			t.Errorf("request for %s had query %q: %v", r.Path, r.Query, err)
		}
	}
	// Without the signature the package server refuses.
	resp, err := http.Get(fx.ps1.URL + "/packages/" + pkg.ID + "/README")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned request: %d, want 403", resp.StatusCode)
	}
}

// TestPublicPackageWithoutToken: a public package is resolved and
// downloaded with no token at all; a signed one is refused, saying a
// client token is needed.
func TestPublicPackageWithoutToken(t *testing.T) {
	fx := newFixture(t)
	pub := fx.ns.Publish("bootstrap", "1", fx.files, nstest.Public)
	fx.ps1.Put(pub.ID, fx.files)
	fx.ps1.MarkPublic(pub.ID)
	fx.ns.Ready(fx.s1, pub.ID)
	anon, err := apiclient.New(fx.ns.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	if _, err := client.Get(t.Context(), anon, "bootstrap", dest, fx.options(t)); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dest, fx.files)
	_, err = client.Get(t.Context(), anon, "demo@1.0", t.TempDir(), fx.options(t))
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("a signed package without a token: %v, want not found (the NS lists public packages only)", err)
	}
	_, err = client.Get(t.Context(), anon, fx.pkg.ID, t.TempDir(), fx.options(t))
	if !errors.Is(err, wharf.ErrUnauthorized) || !strings.Contains(err.Error(), "client token") {
		t.Fatalf("a signed package by id without a token: %v, want 401 naming the client token", err)
	}
}

func TestResumeOnNextServerWithRange(t *testing.T) {
	fx := newFixture(t)
	half := len(fx.files[bigPath]) / 2
	fx.ps1.SetFault(func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
		if path != bigPath {
			return false
		}
		clienttest.DieAfter(w, data, half)
		return true
	})
	dest := t.TempDir()
	res, err := client.Get(t.Context(), fx.cat, "demo@1.0", dest, fx.options(t))
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, dest, fx.files)
	var ranges []string
	for _, r := range fx.ps2.Requests() {
		if r.Path == bigPath {
			ranges = append(ranges, r.Range)
		}
	}
	if want := []string{fmt.Sprintf("bytes=%d-", half)}; !slices.Equal(ranges, want) {
		t.Errorf("ps2 saw requests for %s with Range %q, want %q", bigPath, ranges, want)
	}
	if len(fx.sleeps) != 0 {
		t.Errorf("slept %v before trying the next server, want no sleep", fx.sleeps)
	}
	if got := res.Codebases[0].Bytes + res.Codebases[1].Bytes; got != totalBytes(fx.files) {
		t.Errorf("received %d bytes in all, want %d: the first half was fetched twice", got, totalBytes(fx.files))
	}
}

func TestStalledServerIsAbandoned(t *testing.T) {
	fx := newFixture(t)
	half := len(fx.files[bigPath]) / 2
	fx.ps1.SetFault(func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
		if path != bigPath {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:half])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // hang until the client gives up
		return true
	})
	opt := fx.options(t)
	opt.StallTimeout = 200 * time.Millisecond
	dest := t.TempDir()
	if _, err := client.Get(t.Context(), fx.cat, "demo", dest, opt); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dest, fx.files)
	for _, r := range fx.ps2.Requests() {
		if r.Path == bigPath && r.Range != fmt.Sprintf("bytes=%d-", half) {
			t.Errorf("ps2 saw Range %q, want bytes=%d-", r.Range, half)
		}
	}
}

// TestRangeNotHonoured: when the next server ignores the range or answers
// another one, the file starts again from zero and still ends up right.
func TestRangeNotHonoured(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault clienttest.Fault
	}{
		{"whole file", func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
			r.Header.Del("Range")
			return false // ServeContent sends 200 and everything
		}},
		{"wrong range", func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
			if r.Header.Get("Range") == "" {
				return false
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(data)-1, len(data)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data)
			return true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			fx.ps1.SetFault(func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
				if path != bigPath {
					return false
				}
				clienttest.DieAfter(w, data, len(data)/3)
				return true
			})
			fx.ps2.SetFault(tc.fault)
			dest := t.TempDir()
			if _, err := client.Get(t.Context(), fx.cat, "demo", dest, fx.options(t)); err != nil {
				t.Fatal(err)
			}
			checkTree(t, dest, fx.files)
		})
	}
}

// corrupt returns a fault that serves path with one byte changed.
func corrupt(target string) clienttest.Fault {
	return func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
		if path != target {
			return false
		}
		bad := bytes.Clone(data)
		bad[len(bad)/2] ^= 0xff
		http.ServeContent(w, r, path, time.Time{}, bytes.NewReader(bad))
		return true
	}
}

func TestWrongBytesGoToNextServer(t *testing.T) {
	fx := newFixture(t)
	fx.ps1.SetFault(corrupt(bigPath))
	dest := t.TempDir()
	if _, err := client.Get(t.Context(), fx.cat, "demo", dest, fx.options(t)); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dest, fx.files)
	var ranges []string
	for _, r := range fx.ps2.Requests() {
		if r.Path == bigPath {
			ranges = append(ranges, r.Range)
		}
	}
	if !slices.Equal(ranges, []string{""}) {
		t.Errorf("ps2 saw requests for %s with Range %q, want one for the whole file", bigPath, ranges)
	}
}

func TestWrongBytesEverywhere(t *testing.T) {
	fx := newFixture(t)
	fx.ps1.SetFault(corrupt(bigPath))
	fx.ps2.SetFault(corrupt(bigPath))
	dest := t.TempDir()
	_, err := client.Get(t.Context(), fx.cat, "demo", dest, fx.options(t))
	if err == nil {
		t.Fatal("got no error, want a sha256 mismatch")
	}
	for _, want := range []string{bigPath, "sha256 mismatch", "ps1", "ps2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dest, filepath.FromSlash(bigPath))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bad file %s in the destination: %v", bigPath, err)
	}
	entries, _ := os.ReadDir(dest)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".wharf-get-") {
			t.Errorf("staging folder %s left behind", e.Name())
		}
	}
	if len(fx.sleeps) != 0 {
		t.Errorf("slept %v, want no retry of servers that sent wrong bytes", fx.sleeps)
	}
}

func TestMissingOrForbiddenOnOneServer(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			fx := newFixture(t)
			fx.ps1.SetFault(func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
				http.Error(w, "no", status)
				return true
			})
			dest := t.TempDir()
			if _, err := client.Get(t.Context(), fx.cat, "demo", dest, fx.options(t)); err != nil {
				t.Fatal(err)
			}
			checkTree(t, dest, fx.files)
			if len(fx.sleeps) != 0 {
				t.Errorf("slept %v, want none", fx.sleeps)
			}
		})
	}
}

func TestForbiddenEverywhere(t *testing.T) {
	fx := newFixture(t)
	deny := func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
		http.Error(w, "missing, wrong or expired signature", http.StatusForbidden)
		return true
	}
	fx.ps1.SetFault(deny)
	fx.ps2.SetFault(deny)
	_, err := client.Get(t.Context(), fx.cat, "demo", t.TempDir(), fx.options(t))
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "expired signature") {
		t.Fatalf("got error %v, want one saying HTTP 403 with the server's message", err)
	}
}

// failing returns a fault answering 503 to the first n requests for path.
func failing(target string, n int) clienttest.Fault {
	var mu sync.Mutex
	return func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		if path != target || n == 0 {
			return false
		}
		n--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return true
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	fx := newFixture(t)
	fx.publish("solo", "1", fx.ps1)
	fx.ps1.SetFault(failing(bigPath, 2))
	dest := t.TempDir()
	if _, err := client.Get(t.Context(), fx.cat, "solo", dest, fx.options(t)); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dest, fx.files)
	if want := []time.Duration{time.Second, 2 * time.Second}; !slices.Equal(fx.sleeps, want) {
		t.Errorf("slept %v, want %v", fx.sleeps, want)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	fx := newFixture(t)
	fx.ps1.SetFault(failing(bigPath, 1000))
	fx.ps2.SetFault(failing(bigPath, 1000))
	opt := fx.options(t)
	opt.Rounds = 4
	_, err := client.Get(t.Context(), fx.cat, "demo", t.TempDir(), opt)
	if err == nil || !strings.Contains(err.Error(), bigPath) || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("got error %v, want one naming %s and HTTP 503", err, bigPath)
	}
	count := func(ps *clienttest.PS) (n int) {
		for _, r := range ps.Requests() {
			if r.Path == bigPath {
				n++
			}
		}
		return n
	}
	if n1, n2 := count(fx.ps1), count(fx.ps2); n1 != 4 || n2 != 4 {
		t.Errorf("servers got %d and %d requests for %s, want 4 each", n1, n2, bigPath)
	}
	if len(fx.sleeps) != 3 {
		t.Errorf("slept %v, want 3 pauses between 4 rounds", fx.sleeps)
	}
}

func TestNoCodebases(t *testing.T) {
	fx := newFixture(t)
	pkg := fx.publish("lonely", "1")
	dest := filepath.Join(t.TempDir(), "dest")
	_, err := client.Get(t.Context(), fx.cat, "lonely", dest, fx.options(t))
	if !errors.Is(err, client.ErrNotReady) {
		t.Fatalf("got error %v, want ErrNotReady", err)
	}
	if want := "package lonely@1 (" + pkg.ID + ") is not ready on any package server"; err.Error() != want {
		t.Errorf("got error %q, want %q", err, want)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("destination was created: %v", err)
	}
}

// serveAnything is a fault that serves the same bytes for any path.
func serveAnything(content []byte) clienttest.Fault {
	return func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
		return true
	}
}

// hostileCatalog is a Notification Server gone wrong (compromised, or
// of a version with a bug): the real one refuses such manifests when they
// are published (httpapi.TestHostileManifestsAreRefusedAndStoreNothing),
// so only a stand-in of client.Catalog can send one, to show the client
// does not trust its NS with the file system either.
type hostileCatalog struct {
	pkg api.Package
	cb  api.Codebase
}

func (h hostileCatalog) ListPackages(context.Context, string, string) ([]api.PackageSummary, error) {
	return []api.PackageSummary{h.pkg.PackageSummary}, nil
}
func (h hostileCatalog) Package(context.Context, string) (api.Package, error) { return h.pkg, nil }
func (h hostileCatalog) Codebases(context.Context, string) (api.Codebases, error) {
	return api.Codebases{PackageID: h.pkg.ID, Codebases: []api.Codebase{h.cb}}, nil
}

func TestHostilePathsAreRefused(t *testing.T) {
	content := []byte("pwned\n")
	for _, bad := range []string{"../x", "/etc/passwd", "a/../../x", "a/./b", "C:/x", `a\..\..\x`, "a//b", "ok/NUL", "evil\u202etxt", "Docs/a"} {
		t.Run(bad, func(t *testing.T) {
			ps := clienttest.NewPS(t, "ps1")
			ps.SetFault(serveAnything(content))
			pkg := api.Package{
				PackageSummary: api.PackageSummary{ID: string(wharf.NewPackageID()), Name: "evil", Version: "1"},
				Files: []api.File{
					{Path: "docs/fine.txt", Size: int64(len(content)), SHA256: sum(content)},
					{Path: bad, Size: int64(len(content)), SHA256: sum(content)},
				},
			}
			cat := hostileCatalog{pkg: pkg, cb: api.Codebase{Server: "ps1", URL: ps.URL + "/packages/" + pkg.ID + "/"}}
			parent := t.TempDir()
			dest := filepath.Join(parent, "a", "dest")
			_, err := client.Get(t.Context(), cat, "evil", dest, client.Options{Sleep: func(context.Context, time.Duration) error { return nil }})
			if err == nil || !strings.Contains(err.Error(), "invalid file path") {
				t.Fatalf("got error %v, want an invalid file path", err)
			}
			entries, _ := os.ReadDir(parent)
			if len(entries) != 0 {
				t.Errorf("%s holds %v, want nothing written", parent, entries)
			}
			if len(ps.Requests()) != 0 {
				t.Errorf("the package server was asked for %v", ps.Requests())
			}
		})
	}
}

func TestSymlinkInDestinationCannotEscape(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	content := []byte("pwned\n")
	fx := newFixture(t)
	fx.files = map[string][]byte{"link/f": content}
	fx.publish("evil", "1", fx.ps1)
	outside, dest := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dest, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := client.Get(t.Context(), fx.cat, "evil", dest, fx.options(t))
	if err == nil || !strings.Contains(err.Error(), "link/f") {
		t.Fatalf("got error %v, want one naming link/f", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written outside the destination: %v", entries)
	}
}

func TestRerunSkipsGoodFiles(t *testing.T) {
	fx := newFixture(t)
	dest := t.TempDir()
	if _, err := client.Get(t.Context(), fx.cat, "demo", dest, fx.options(t)); err != nil {
		t.Fatal(err)
	}
	before := len(fx.ps1.Requests())

	res, err := client.Get(t.Context(), fx.cat, "demo", dest, fx.options(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.SkippedFiles != len(fx.files) || res.DownloadedBytes != 0 {
		t.Errorf("second run skipped %d files and downloaded %d bytes, want %d and 0", res.SkippedFiles, res.DownloadedBytes, len(fx.files))
	}
	if n := len(fx.ps1.Requests()); n != before {
		t.Errorf("second run made %d requests, want none", n-before)
	}

	// Damage two files: same size other bytes, and a truncated one.
	damaged := filepath.Join(dest, filepath.FromSlash(bigPath))
	data := bytes.Clone(fx.files[bigPath])
	data[10] ^= 1
	if err := os.WriteFile(damaged, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dest, "README"), 3); err != nil {
		t.Fatal(err)
	}
	res, err = client.Get(t.Context(), fx.cat, "demo", dest, fx.options(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.SkippedFiles != len(fx.files)-2 {
		t.Errorf("third run skipped %d files, want %d", res.SkippedFiles, len(fx.files)-2)
	}
	var fetched []string
	for _, r := range fx.ps1.Requests()[before:] {
		fetched = append(fetched, r.Path)
	}
	slices.Sort(fetched)
	if want := []string{"README", bigPath}; !slices.Equal(fetched, want) {
		t.Errorf("third run fetched %q, want %q", fetched, want)
	}
	checkTree(t, dest, fx.files)
}

func TestResolve(t *testing.T) {
	ns := nstest.New(t)
	files := map[string][]byte{"f": []byte("x")}
	// Published in this order: the NS stamps their creation times.
	v10 := ns.Publish("demo", "1.0", files)
	v20 := ns.Publish("demo", "2.0", files)
	v11 := ns.Publish("demo", "1.1", files) // a hotfix, added last
	cat, err := apiclient.New(ns.URL, ns.ClientToken("resolve"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec, wantID, wantErr string
	}{
		{spec: "demo", wantID: v11.ID}, // newest by created_at, not by version
		{spec: "demo@1.0", wantID: v10.ID},
		{spec: "demo@2.0", wantID: v20.ID},
		{spec: v20.ID, wantID: v20.ID},
		{spec: "nope", wantErr: "package nope: not found"},
		{spec: "demo@9", wantErr: `package "demo" has no version "9" (it has 1.0, 1.1, 2.0): not found`},
		{spec: "demo@", wantErr: "empty version"},
		{spec: string(wharf.NewPackageID()), wantErr: "not found"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			p, err := client.Resolve(t.Context(), cat, tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error %q", p.ID, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != tc.wantID || len(p.Files) != 1 {
				t.Errorf("got %s %s@%s with %d files, want %s", p.ID, p.Name, p.Version, len(p.Files), tc.wantID)
			}
		})
	}
	if _, err := client.Resolve(t.Context(), cat, "nope"); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("unknown name: got %v, want wharf.ErrNotFound", err)
	}
}

func TestProgressBar(t *testing.T) {
	fx := newFixture(t)
	fx.ps1.SetFault(func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
		if path != "README" {
			return false
		}
		http.NotFound(w, r)
		return true
	})
	var buf bytes.Buffer
	opt := fx.options(t)
	opt.Progress = &buf
	opt.Log = nil // warnings go above the bar
	dest := t.TempDir()
	if _, err := client.Get(t.Context(), fx.cat, "demo", dest, opt); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dest, fx.files)
	for _, want := range []string{"demo 1.0", "100 %", "level=WARN", "path=README server=ps1"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("progress output %q: want %q", buf.String(), want)
		}
	}
}

func TestCancel(t *testing.T) {
	fx := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	fx.ps1.SetFault(func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
		if path == bigPath {
			cancel()
			<-r.Context().Done()
			return true
		}
		return false
	})
	opt := fx.options(t)
	opt.Parallel = 1
	dest := t.TempDir()
	_, err := client.Get(ctx, fx.cat, "demo", dest, opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(filepath.Join(dest, filepath.FromSlash(bigPath))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s in the destination after cancel: %v", bigPath, err)
	}
	entries, _ := os.ReadDir(dest)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".wharf-get-") {
			t.Errorf("staging folder %s left behind", e.Name())
		}
	}
}

var _ io.Writer = testWriter{}
