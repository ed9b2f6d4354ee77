// Package pstest holds test doubles for the Package Server: a fake
// Notification Server that implements the agent routes of docs/api.md (with
// knobs to corrupt, fail, cut and slow down blob downloads, and records of
// what it saw), an instant clock, and a logger that writes to t.Log.
package pstest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// NS is a fake Notification Server. Its zero settings are download
// concurrency 4 and poll wait 30 s; packages are assigned to every enrolled
// server unless Unassign says otherwise.
type NS struct {
	*httptest.Server

	mu       sync.Mutex
	tokens   map[string]bool
	servers  map[string]*server // by name
	packages map[string]*pkg
	order    []string
	blobs    map[string][]byte
	settings api.AgentSettings
	version  int
	changed  chan struct{} // closed and replaced on every change

	corrupt    map[string]bool
	failConfig int   // answer the next failConfig config requests with 503
	fail       int   // answer the next fail blob requests with 503
	cut        int   // cut the next cut blob answers ...
	cutAfter   int64 // ... after this many bytes
	rate       int64 // bytes per second per blob answer; 0: no limit
	rateFor    map[string]bool
	blobDelay  time.Duration

	ranges        []Range
	active, maxAc int
	blobRequests  int
	bytesSent     map[string]int64
	states        map[string]map[string]api.PackageState // server → package → state
	stateLog      []api.PackageState
	configPolls   int
	manifests     int
}

type server struct {
	name, os, url, credential string
	key                       []byte
}

type pkg struct {
	sum      api.PackageSummary
	files    []api.File
	assigned bool
}

// Range is a ranged blob request the fake saw.
type Range struct {
	Digest string
	Offset int64
}

// NewNS starts a fake NS that stops when the test ends.
func NewNS(t testing.TB) *NS {
	n := &NS{
		tokens:    map[string]bool{},
		servers:   map[string]*server{},
		packages:  map[string]*pkg{},
		blobs:     map[string][]byte{},
		settings:  api.AgentSettings{PollWaitSeconds: 30, DownloadConcurrency: 4},
		changed:   make(chan struct{}),
		corrupt:   map[string]bool{},
		rateFor:   map[string]bool{},
		bytesSent: map[string]int64{},
		states:    map[string]map[string]api.PackageState{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/agent/enroll", n.enroll)
	mux.HandleFunc("GET /api/v1/agent/{name}/config", n.agent(n.config))
	mux.HandleFunc("GET /api/v1/agent/{name}/packages/{id}", n.agent(n.pkg))
	mux.HandleFunc("POST /api/v1/agent/{name}/package-states", n.agent(n.putStates))
	mux.HandleFunc("GET /api/v1/blobs/{digest}", n.blob)
	n.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		n.Server.CloseClientConnections()
		n.Server.Close()
	})
	return n
}

// Sum returns the hex SHA-256 of data.
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func (n *NS) bump() {
	n.version++
	close(n.changed)
	n.changed = make(chan struct{})
}

// EnrollToken returns a new one-time enrollment token.
func (n *NS) EnrollToken() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := "enroll-" + randHex(8)
	n.tokens[t] = true
	return t
}

// AddPackage publishes a package of the given files (path → content),
// assigned to every server; edit changes its summary (custom location,
// signed) before it is stored.
func (n *NS) AddPackage(name, version string, files map[string][]byte, edit ...func(*api.PackageSummary)) api.PackageSummary {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := &pkg{assigned: true}
	p.sum = api.PackageSummary{ID: string(wharf.NewPackageID()), Name: name, Version: version,
		Assignment: api.Assignment{All: true}, CreatedAt: time.Now().UTC()}
	for path, data := range files {
		d := Sum(data)
		n.blobs[d] = data
		p.files = append(p.files, api.File{Path: path, Size: int64(len(data)), SHA256: d})
		p.sum.Size += int64(len(data))
	}
	sort.Slice(p.files, func(i, j int) bool { return p.files[i].Path < p.files[j].Path })
	p.sum.FileCount = len(p.files)
	for _, e := range edit {
		e(&p.sum)
	}
	n.packages[p.sum.ID] = p
	n.order = append(n.order, p.sum.ID)
	n.bump()
	return p.sum
}

// Unassign takes a package away from every server.
func (n *NS) Unassign(id string) { n.setAssigned(id, false) }

// Assign gives a package back to every server.
func (n *NS) Assign(id string) { n.setAssigned(id, true) }

func (n *NS) setAssigned(id string, v bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.packages[id].assigned = v
	n.bump()
}

// SetSettings changes the settings every server receives.
func (n *NS) SetSettings(s api.AgentSettings) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.settings = s
	n.bump()
}

// Corrupt makes the blob d be served with its first byte flipped.
func (n *NS) Corrupt(d string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.corrupt[d] = on
}

// FailConfig answers the next count config requests with 503.
func (n *NS) FailConfig(count int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failConfig = count
}

// FailBlobs answers the next count blob requests with 503.
func (n *NS) FailBlobs(count int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fail = count
}

// CutBlobs drops the connection of the next count blob answers after
// sending after bytes of the body.
func (n *NS) CutBlobs(count int, after int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut, n.cutAfter = count, after
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
func (n *NS) SetBlobDelay(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.blobDelay = d
}

// Ranges returns the ranged blob requests seen so far.
func (n *NS) Ranges() []Range {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Range(nil), n.ranges...)
}

// MaxConcurrentBlobs returns the most blob answers in flight at once.
func (n *NS) MaxConcurrentBlobs() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.maxAc
}

// BlobRequests returns how many blob requests were made.
func (n *NS) BlobRequests() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.blobRequests
}

// BytesSent returns how many body bytes of blob d were sent.
func (n *NS) BytesSent(d string) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bytesSent[d]
}

// ManifestRequests returns how many package manifests were asked for.
func (n *NS) ManifestRequests() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.manifests
}

// ConfigPolls returns how many config requests were answered.
func (n *NS) ConfigPolls() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.configPolls
}

// State returns the last state server reported for package id.
func (n *NS) State(serverName, id string) (api.PackageState, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.states[serverName][id]
	return s, ok
}

// StateLog returns every state reported, in order.
func (n *NS) StateLog() []api.PackageState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]api.PackageState(nil), n.stateLog...)
}

// WaitState waits up to timeout until server reports state for package id
// and returns the last state seen; ok is false on timeout.
func (n *NS) WaitState(serverName, id, state string, timeout time.Duration) (api.PackageState, bool) {
	deadline := time.Now().Add(timeout)
	for {
		s, _ := n.State(serverName, id)
		if s.State == state {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SigningKey returns the signing key the fake gave an enrolled server.
func (n *NS) SigningKey(serverName string) []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.servers[serverName]; s != nil {
		return s.key
	}
	return nil
}

// ServerURL returns the URL a server enrolled with.
func (n *NS) ServerURL(serverName string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.servers[serverName]; s != nil {
		return s.url
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, api.Error{Error: msg})
}

func (n *NS) enroll(w http.ResponseWriter, r *http.Request) {
	var req api.EnrollRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid enroll request: "+err.Error())
		return
	}
	name, err := wharf.ParseServerName(req.Name)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.tokens[req.Token] {
		writeError(w, http.StatusUnauthorized, "unknown, used or expired enrollment token")
		return
	}
	if n.servers[string(name)] != nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("server %s is enrolled already", name))
		return
	}
	delete(n.tokens, req.Token)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &server{name: string(name), os: req.OS, url: req.URL, credential: "cred-" + randHex(16), key: key}
	n.servers[s.name] = s
	writeJSON(w, http.StatusCreated, api.Enrollment{Name: s.name, Credential: s.credential, SigningKey: hex.EncodeToString(key)})
}

// agent wraps a handler of a route naming a server: the bearer must be that
// server's credential.
func (n *NS) agent(h func(w http.ResponseWriter, r *http.Request, s *server)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		s := n.byCredential(r)
		n.mu.Unlock()
		switch {
		case s == nil:
			writeError(w, http.StatusUnauthorized, "not authenticated")
		case s.name != r.PathValue("name"):
			writeError(w, http.StatusForbidden, "forbidden")
		default:
			h(w, r, s)
		}
	}
}

func (n *NS) byCredential(r *http.Request) *server {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil
	}
	for _, s := range n.servers {
		if s.credential == tok {
			return s
		}
	}
	return nil
}

func (n *NS) configLocked() (api.AgentConfig, string) {
	cfg := api.AgentConfig{Settings: n.settings, Packages: []api.PackageSummary{}}
	for _, id := range n.order {
		if p := n.packages[id]; p.assigned {
			cfg.Packages = append(cfg.Packages, p.sum)
		}
	}
	return cfg, fmt.Sprintf(`"v%d"`, n.version)
}

func (n *NS) config(w http.ResponseWriter, r *http.Request, s *server) {
	wait := 30 * time.Second
	if v := r.URL.Query().Get("wait"); v != "" {
		sec, err := strconv.Atoi(v)
		if err != nil || sec < 0 || sec > 300 {
			writeError(w, http.StatusBadRequest, "invalid wait: want 0 to 300 seconds")
			return
		}
		wait = time.Duration(sec) * time.Second
	}
	n.mu.Lock()
	n.configPolls++
	if n.failConfig > 0 {
		n.failConfig--
		n.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "injected failure")
		return
	}
	cfg, etag := n.configLocked()
	changed := n.changed
	n.mu.Unlock()
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == etag {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-changed:
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		n.mu.Lock()
		cfg, etag = n.configLocked()
		n.mu.Unlock()
		if inm == etag {
			w.Header().Set("ETag", etag)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	cfg.Server = s.name
	w.Header().Set("ETag", etag)
	writeJSON(w, http.StatusOK, cfg)
}

func (n *NS) pkg(w http.ResponseWriter, r *http.Request, _ *server) {
	n.mu.Lock()
	n.manifests++
	p := n.packages[r.PathValue("id")]
	n.mu.Unlock()
	if p == nil || !p.assigned {
		writeError(w, http.StatusNotFound, "package not found")
		return
	}
	writeJSON(w, http.StatusOK, api.Package{PackageSummary: p.sum, Files: p.files})
}

func (n *NS) putStates(w http.ResponseWriter, r *http.Request, s *server) {
	var body api.PackageStates
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid package states: "+err.Error())
		return
	}
	n.mu.Lock()
	m := n.states[s.name]
	if m == nil {
		m = map[string]api.PackageState{}
		n.states[s.name] = m
	}
	for _, st := range body.States {
		st.Server = s.name
		m[st.PackageID] = st
		n.stateLog = append(n.stateLog, st)
	}
	n.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (n *NS) blob(w http.ResponseWriter, r *http.Request) {
	d := r.PathValue("digest")
	n.mu.Lock()
	n.blobRequests++
	authed := n.byCredential(r) != nil
	data, ok := n.blobs[d]
	fail := n.fail > 0
	if fail {
		n.fail--
	}
	cut := int64(-1)
	if n.cut > 0 && !fail && ok {
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
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.active--
		n.mu.Unlock()
	}()
	switch {
	case !authed:
		writeError(w, http.StatusUnauthorized, "not authenticated")
		return
	case !ok:
		writeError(w, http.StatusNotFound, "blob not found")
		return
	case fail:
		writeError(w, http.StatusServiceUnavailable, "injected failure")
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if corrupt && len(data) > 0 {
		data = append([]byte(nil), data...)
		data[0] ^= 0xff
	}
	status, off := http.StatusOK, int64(0)
	if rg := r.Header.Get("Range"); rg != "" {
		v, ok := strings.CutPrefix(rg, "bytes=")
		v, ok2 := strings.CutSuffix(v, "-")
		o, err := strconv.ParseInt(v, 10, 64)
		if !ok || !ok2 || err != nil || o < 0 || o >= int64(len(data)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "invalid range")
			return
		}
		status, off = http.StatusPartialContent, o
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", o, len(data)-1, len(data)))
		n.mu.Lock()
		n.ranges = append(n.ranges, Range{Digest: d, Offset: o})
		n.mu.Unlock()
	}
	body := data[off:]
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	chunk := int64(len(body))
	var tick time.Duration
	if rate > 0 {
		chunk = max(rate/20, 1)
		tick = 50 * time.Millisecond
	}
	var sent int64
	for sent < int64(len(body)) {
		k := min(chunk, int64(len(body))-sent)
		if cut >= 0 && sent+k > cut {
			k = cut - sent
		}
		if k > 0 {
			if _, err := w.Write(body[sent : sent+k]); err != nil {
				return
			}
			sent += k
			n.mu.Lock()
			n.bytesSent[d] += k
			n.mu.Unlock()
		}
		if cut >= 0 && sent >= cut {
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		if tick > 0 {
			w.(http.Flusher).Flush()
			select {
			case <-time.After(tick):
			case <-r.Context().Done():
				return
			}
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
