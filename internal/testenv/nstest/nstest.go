// Package nstest runs the real Notification Server in-process for tests:
// ns.Open on a temporary SQLite database and blob folder, served by
// httptest, behind a middleware that injects faults and records what it
// saw. Tests of the client, the CLI and the Package Server share it, so
// they talk to the NS production runs — its authentication, its strict
// decoding, its rules — and no hand-written fake can drift from it.
//
// The faults act on the answers of the real handlers:
//
//   - blob downloads (GET /api/v1/blobs/{digest}): answered 503
//     (FailBlobs), delayed (SetBlobDelay), slowed to a rate (SetRate), cut
//     after some bytes with the connection dropped (CutBlobs), or with the
//     first byte of the blob flipped (Corrupt);
//   - configuration polls: answered 503 (FailConfig).
//
// It records the blob requests (count, concurrency, ranges, bytes sent per
// blob), the manifests and configurations asked for, and every package
// state a server reported.
package nstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ns"
	"github.com/wharf-project/wharf/internal/wharf"
)

// NS is a real Notification Server for one test.
type NS struct {
	*httptest.Server
	// AdminToken is the NS's admin token; Admin a client with it.
	AdminToken string
	Admin      *apiclient.Client
	Srv        *ns.Server

	t testing.TB

	mu         sync.Mutex
	servers    map[string]Server // enrolled through Enroll, or seen enrolling
	corrupt    map[string]bool
	failConfig int
	fail       int
	cut        int
	cutAfter   int64
	rate       int64
	rateFor    map[string]bool
	blobDelay  time.Duration

	ranges        []Range
	active, maxAc int
	blobRequests  int
	bytesSent     map[string]int64
	stateLog      []api.PackageState
	configPolls   int
	pollURLs      []string // the url each configuration poll reported
	manifests     int
}

// Server is an enrolled Package Server as the test knows it.
type Server struct {
	Name, URL, Credential string
	SigningKey            []byte
}

// Range is a ranged blob request seen.
type Range struct {
	Digest string
	Offset int64
}

// Option changes how New starts the NS.
type Option func(*ns.Config)

// WithConfig edits the NS's configuration before it opens.
func WithConfig(f func(*ns.Config)) Option { return Option(f) }

// New starts a real NS that stops when the test ends; its log goes to
// t.Log.
func New(t testing.TB, opts ...Option) *NS {
	t.Helper()
	cfg := ns.Config{DataDir: t.TempDir()}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tl := &tlog{t: t}
	t.Cleanup(func() { tl.mu.Lock(); tl.done = true; tl.mu.Unlock() })
	log := slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := ns.Open(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("nstest: open the NS: %v", err)
	}
	n := &NS{t: t, Srv: srv, AdminToken: srv.NewAdminToken, servers: map[string]Server{}, corrupt: map[string]bool{},
		rateFor: map[string]bool{}, bytesSent: map[string]int64{}}
	done := make(chan struct{})
	go func() { srv.ServeCatalog(ctx); close(done) }()
	n.Server = httptest.NewServer(n.middleware(srv.Handler()))
	t.Cleanup(func() {
		n.Server.CloseClientConnections()
		n.Server.Close()
		cancel()
		<-done
		srv.Close()
	})
	if n.Admin, err = apiclient.New(n.URL, n.AdminToken, nil); err != nil {
		t.Fatal(err)
	}
	return n
}

// tlog writes the NS's log to t.Log until the test ends.
type tlog struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tlog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log("ns: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Sum returns the hex SHA-256 of data.
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// ---- setting up

// EnrollToken mints a one-time enrollment token.
func (n *NS) EnrollToken() string {
	n.t.Helper()
	tok, err := n.Admin.CreateEnrollToken(context.Background())
	if err != nil {
		n.t.Fatalf("nstest: enroll token: %v", err)
	}
	return tok.Token
}

// Enroll enrolls a Package Server that serves at url (a fake, or one that
// exists only as its credential) and returns it.
func (n *NS) Enroll(name, url string) Server {
	n.t.Helper()
	anon, _ := apiclient.New(n.URL, "", nil)
	e, err := anon.Enroll(context.Background(), api.EnrollRequest{Token: n.EnrollToken(), Name: name, OS: "linux", URL: url})
	if err != nil {
		n.t.Fatalf("nstest: enroll %s: %v", name, err)
	}
	key, _ := hex.DecodeString(e.SigningKey)
	s := Server{Name: e.Name, URL: url, Credential: e.Credential, SigningKey: key}
	n.mu.Lock()
	n.servers[s.Name] = s
	n.mu.Unlock()
	return s
}

// Agent returns an API client with the server's credential.
func (n *NS) Agent(s Server) *apiclient.Client {
	c, err := apiclient.New(n.URL, s.Credential, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	return c
}

// ClientToken creates a client token and returns it.
func (n *NS) ClientToken(name string) string {
	n.t.Helper()
	ct, err := n.Admin.CreateClientToken(context.Background(), name)
	if err != nil {
		n.t.Fatalf("nstest: client token: %v", err)
	}
	return ct.Token
}

// Public makes a package public (Publish's default is signed, as the
// NS's).
func Public(m *api.PackageManifest) { m.Public = true }

// Servers assigns a package to the named servers only.
func Servers(names ...string) func(*api.PackageManifest) {
	return func(m *api.PackageManifest) { m.Assignment = api.Assignment{Servers: names} }
}

// CustomLocation gives a package a custom location.
func CustomLocation(path string) func(*api.PackageManifest) {
	return func(m *api.PackageManifest) { m.CustomLocation = path }
}

// Publish uploads files (path → content) and creates the package,
// assigned to all servers and signed unless edit says otherwise, and
// returns it with its files.
func (n *NS) Publish(name, version string, files map[string][]byte, edit ...func(*api.PackageManifest)) api.Package {
	n.t.Helper()
	ctx := context.Background()
	m := api.PackageManifest{Name: name, Version: version, Assignment: api.Assignment{All: true}}
	for path, data := range files {
		d := Sum(data)
		if err := n.Admin.PutBlob(ctx, wharf.Digest(d), bytes.NewReader(data), int64(len(data))); err != nil {
			n.t.Fatalf("nstest: upload %s: %v", path, err)
		}
		m.Files = append(m.Files, api.File{Path: path, Size: int64(len(data)), SHA256: d})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	for _, e := range edit {
		e(&m)
	}
	p, _, err := n.Admin.CreatePackage(ctx, m)
	if err != nil {
		n.t.Fatalf("nstest: publish %s %s: %v", name, version, err)
	}
	return p
}

// AddPackage publishes a public package of files (path → content),
// assigned to every server, and returns its summary; edit may set its
// custom location, make it signed (Signed) or assign it to named servers
// (Assignment). It is Publish in the shape the Package Server's tests
// used with their former fake NS.
func (n *NS) AddPackage(name, version string, files map[string][]byte, edit ...func(*api.PackageSummary)) api.PackageSummary {
	n.t.Helper()
	p := n.Publish(name, version, files, func(m *api.PackageManifest) {
		sum := api.PackageSummary{Assignment: m.Assignment}
		for _, e := range edit {
			e(&sum)
		}
		m.CustomLocation, m.Assignment = sum.CustomLocation, sum.Assignment
		m.Public = !sum.Signed
	})
	return p.PackageSummary
}

// Unassign takes a package away from every server. Packages do not
// change once published, so it deletes it: the servers drop it with
// their next configuration.
func (n *NS) Unassign(id string) { n.Delete(id) }

// Delete deletes a package: Package Servers drop it with their next
// configuration.
func (n *NS) Delete(id string) {
	n.t.Helper()
	if err := n.Admin.DeletePackage(context.Background(), id); err != nil {
		n.t.Fatalf("nstest: delete %s: %v", id, err)
	}
}

// Ready reports, as server s, that it has packages ids ready.
func (n *NS) Ready(s Server, ids ...string) {
	n.t.Helper()
	var states []api.PackageState
	for _, id := range ids {
		states = append(states, api.PackageState{PackageID: id, State: api.StateReady})
	}
	if err := n.Agent(s).PutPackageStates(context.Background(), s.Name, states); err != nil {
		n.t.Fatalf("nstest: report %v ready on %s: %v", ids, s.Name, err)
	}
}

// SetSettings sets the global policies so that every server without an
// override receives settings (its Linux location as StorageLocation).
func (n *NS) SetSettings(s api.AgentSettings) {
	n.t.Helper()
	ctx := context.Background()
	loc := s.StorageLocation
	if loc == "" {
		loc = api.LocationDefault
	}
	mode := s.RelocationMode
	if mode == "" {
		mode = api.RelocationOnline
	}
	if _, err := n.Admin.SetPackageServerPolicy(ctx, "", api.PackageServerSettings{LinuxLocation: &loc,
		AllFixedDrives: &s.AllFixedDrives, RelocationMode: &mode}); err != nil {
		n.t.Fatalf("nstest: package server policy: %v", err)
	}
	site := api.SiteServerSettings{DownloadBandwidth: &s.DownloadBandwidth}
	if s.PollWaitSeconds > 0 {
		site.PollIntervalSeconds = &s.PollWaitSeconds
	}
	if s.DownloadConcurrency > 0 {
		site.DownloadConcurrency = &s.DownloadConcurrency
	}
	if _, err := n.Admin.SetSiteServerPolicy(ctx, "", site); err != nil {
		n.t.Fatalf("nstest: site server policy: %v", err)
	}
}

// ---- faults

// Corrupt makes blob d be served with its first byte flipped.
func (n *NS) Corrupt(d string, on bool) { n.mu.Lock(); n.corrupt[d] = on; n.mu.Unlock() }

// FailConfig answers the next count configuration polls with 503.
func (n *NS) FailConfig(count int) { n.mu.Lock(); n.failConfig = count; n.mu.Unlock() }

// FailBlobs answers the next count blob requests with 503.
func (n *NS) FailBlobs(count int) { n.mu.Lock(); n.fail = count; n.mu.Unlock() }

// CutBlobs drops the connection of the next count blob answers after
// after bytes of their body.
func (n *NS) CutBlobs(count int, after int64) {
	n.mu.Lock()
	n.cut, n.cutAfter = count, after
	n.mu.Unlock()
}

// SetRate limits each blob answer to bytesPerSecond (0: no limit); with
// digests, only those blobs are slowed.
func (n *NS) SetRate(bytesPerSecond int64, digests ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rate = bytesPerSecond
	n.rateFor = map[string]bool{}
	for _, d := range digests {
		n.rateFor[d] = true
	}
}

// SetBlobDelay makes every blob answer wait d before its first byte.
func (n *NS) SetBlobDelay(d time.Duration) { n.mu.Lock(); n.blobDelay = d; n.mu.Unlock() }

// ---- records

// Ranges returns the ranged blob requests seen so far.
func (n *NS) Ranges() []Range { n.mu.Lock(); defer n.mu.Unlock(); return slices.Clone(n.ranges) }

// MaxConcurrentBlobs returns the most blob answers in flight at once.
func (n *NS) MaxConcurrentBlobs() int { n.mu.Lock(); defer n.mu.Unlock(); return n.maxAc }

// BlobRequests returns how many blob requests were made.
func (n *NS) BlobRequests() int { n.mu.Lock(); defer n.mu.Unlock(); return n.blobRequests }

// BytesSent returns how many body bytes of blob d were sent.
func (n *NS) BytesSent(d string) int64 { n.mu.Lock(); defer n.mu.Unlock(); return n.bytesSent[d] }

// ManifestRequests returns how many package manifests servers asked for.
func (n *NS) ManifestRequests() int { n.mu.Lock(); defer n.mu.Unlock(); return n.manifests }

// PollURLs returns the URL each configuration poll reported (the ?url=
// of a Package Server; "" for none), in order.
func (n *NS) PollURLs() []string { n.mu.Lock(); defer n.mu.Unlock(); return slices.Clone(n.pollURLs) }

// ConfigPolls returns how many configuration polls were made.
func (n *NS) ConfigPolls() int { n.mu.Lock(); defer n.mu.Unlock(); return n.configPolls }

// StateLog returns every package state servers reported (and the NS
// took), in order.
func (n *NS) StateLog() []api.PackageState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.stateLog)
}

// State returns the state server reported for package id, as the NS keeps
// it.
func (n *NS) State(server, id string) (api.PackageState, bool) {
	p, err := n.Admin.Package(context.Background(), id)
	if err != nil {
		return api.PackageState{}, false
	}
	for _, s := range p.States {
		if s.Server == server {
			return s, true
		}
	}
	return api.PackageState{}, false
}

// WaitState waits up to timeout until server reports state for package
// id, and returns the last state seen; ok is false on timeout.
func (n *NS) WaitState(server, id, state string, timeout time.Duration) (api.PackageState, bool) {
	deadline := time.Now().Add(timeout)
	for {
		s, _ := n.State(server, id)
		if s.State == state {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SigningKey returns the signing key a server got when it enrolled (nil
// for one the NS did not see enroll).
func (n *NS) SigningKey(server string) []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.servers[server].SigningKey
}

// Credential returns the credential a server got when it enrolled.
func (n *NS) Credential(server string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.servers[server].Credential
}

// ServerURL returns the URL the NS has for a server now.
func (n *NS) ServerURL(server string) string {
	s, err := n.Admin.Server(context.Background(), server)
	if err != nil {
		return ""
	}
	return s.URL
}

// ---- the middleware

func (n *NS) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, api.Prefix)
		parts := strings.Split(strings.Trim(path, "/"), "/")
		switch {
		case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "blobs":
			n.blob(w, r, parts[1], next)
		case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "agent" && parts[2] == "config":
			n.mu.Lock()
			n.configPolls++
			n.pollURLs = append(n.pollURLs, r.URL.Query().Get("url"))
			fail := n.failConfig > 0
			if fail {
				n.failConfig--
			}
			n.mu.Unlock()
			if fail {
				http.Error(w, `{"error":"injected failure"}`, http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		case r.Method == http.MethodGet && len(parts) == 4 && parts[0] == "agent" && parts[2] == "packages":
			n.mu.Lock()
			n.manifests++
			n.mu.Unlock()
			next.ServeHTTP(w, r)
		case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "agent" && parts[2] == "package-states":
			n.states(w, r, parts[1], next)
		case r.Method == http.MethodPost && path == "/agent/enroll":
			n.enroll(w, r, next)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// states records the states a server reports when the NS takes them.
func (n *NS) states(w http.ResponseWriter, r *http.Request, server string, next http.Handler) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusRecorder{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	if rec.status/100 != 2 {
		return
	}
	var ps api.PackageStates
	if json.Unmarshal(body, &ps) != nil {
		return
	}
	n.mu.Lock()
	for _, s := range ps.States {
		s.Server = server
		n.stateLog = append(n.stateLog, s)
	}
	n.mu.Unlock()
}

// enroll records the server and its signing key from the NS's answer.
func (n *NS) enroll(w http.ResponseWriter, r *http.Request, next http.Handler) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusRecorder{ResponseWriter: w, keep: true}
	next.ServeHTTP(rec, r)
	var req api.EnrollRequest
	var e api.Enrollment
	if rec.status != http.StatusCreated || json.Unmarshal(body, &req) != nil || json.Unmarshal(rec.body.Bytes(), &e) != nil {
		return
	}
	key, _ := hex.DecodeString(e.SigningKey)
	n.mu.Lock()
	n.servers[e.Name] = Server{Name: e.Name, URL: req.URL, Credential: e.Credential, SigningKey: key}
	n.mu.Unlock()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	keep   bool
	body   bytes.Buffer
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if s.keep {
		s.body.Write(b)
	}
	return s.ResponseWriter.Write(b)
}

// blob serves a blob through the NS with the faults set.
func (n *NS) blob(w http.ResponseWriter, r *http.Request, d string, next http.Handler) {
	n.mu.Lock()
	n.blobRequests++
	fail := n.fail > 0
	if fail {
		n.fail--
	}
	cut := int64(-1)
	if n.cut > 0 && !fail {
		n.cut--
		cut = n.cutAfter
	}
	corrupt := n.corrupt[d]
	rate := n.rate
	if len(n.rateFor) > 0 && !n.rateFor[d] {
		rate = 0
	}
	delay := n.blobDelay
	n.active++
	n.maxAc = max(n.maxAc, n.active)
	offset := int64(0)
	if rg := r.Header.Get("Range"); rg != "" {
		if v, ok := strings.CutPrefix(rg, "bytes="); ok {
			if o, err := strconv.ParseInt(strings.TrimSuffix(v, "-"), 10, 64); err == nil {
				offset = o
				n.ranges = append(n.ranges, Range{Digest: d, Offset: o})
			}
		}
	}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.active--
		n.mu.Unlock()
	}()
	if fail {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"injected failure"}`)
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	fw := &faultWriter{ResponseWriter: w, n: n, digest: d, cut: cut, flip: corrupt && offset == 0, ctx: r.Context()}
	if rate > 0 {
		fw.chunk, fw.tick = max(rate/20, 1), 50*time.Millisecond
	}
	next.ServeHTTP(fw, r)
}

// faultWriter passes a blob's body on with the faults: the first byte
// flipped, a rate, a cut.
type faultWriter struct {
	http.ResponseWriter
	n      *NS
	digest string
	ctx    context.Context
	status int
	flip   bool
	cut    int64 // -1: none
	sent   int64
	chunk  int64
	tick   time.Duration
}

func (f *faultWriter) WriteHeader(code int) {
	f.status = code
	f.ResponseWriter.WriteHeader(code)
}

var errGone = errors.New("client gone")

func (f *faultWriter) Write(b []byte) (int, error) {
	if f.status == 0 {
		f.status = http.StatusOK
	}
	if f.status/100 != 2 {
		return f.ResponseWriter.Write(b)
	}
	written := 0
	for len(b) > 0 {
		k := int64(len(b))
		if f.chunk > 0 {
			k = min(k, f.chunk)
		}
		if f.cut >= 0 && f.sent+k > f.cut {
			k = f.cut - f.sent
		}
		if k > 0 {
			part := b[:k]
			if f.flip && f.sent == 0 {
				part = append([]byte{part[0] ^ 0xff}, part[1:]...)
			}
			m, err := f.ResponseWriter.Write(part)
			f.sent += int64(m)
			written += m
			f.n.mu.Lock()
			f.n.bytesSent[f.digest] += int64(m)
			f.n.mu.Unlock()
			if err != nil {
				return written, err
			}
			b = b[k:]
		}
		if f.cut >= 0 && f.sent >= f.cut {
			if fl, ok := f.ResponseWriter.(http.Flusher); ok {
				fl.Flush()
			}
			panic(http.ErrAbortHandler) // drop the connection in the middle of the body
		}
		if f.tick > 0 {
			if fl, ok := f.ResponseWriter.(http.Flusher); ok {
				fl.Flush()
			}
			select {
			case <-time.After(f.tick):
			case <-f.ctx.Done():
				return written, errGone
			}
		}
	}
	return written, nil
}

func (f *faultWriter) Flush() {
	if fl, ok := f.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

// String names the NS for messages.
func (n *NS) String() string { return fmt.Sprintf("nstest.NS(%s)", n.URL) }
