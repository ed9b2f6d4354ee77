// Package clienttest provides a fake Package Server for the tests of
// `wharf get` (the client's and the CLI's): it serves the files it is given
// with http.ServeContent, checks the signatures of the Notification
// Server's codebase URLs with the key the NS gave it, records what it was
// asked, and lets a test take over a request to inject a fault (die in the
// middle of a file, serve wrong bytes, answer 503). The Notification
// Server of those tests is the real one (internal/testenv/nstest).
package clienttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/urlsign"
)

// Request is one request a fake PS received.
type Request struct {
	PackageID, Path string
	Range           string // the Range header
	Query           string // the raw query
}

// Fault may take over a request of a fake PS: it returns true when it wrote
// the answer itself. data is the file's content, nil for an unknown file.
type Fault func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool

// PS is a fake Package Server serving GET and HEAD
// /packages/{id}/{path...} with http.ServeContent (so Range works), 404 for
// anything else.
type PS struct {
	*httptest.Server
	Name string

	mu       sync.Mutex
	files    map[string]map[string][]byte // package id → path → content
	fault    Fault
	key      []byte          // when set, every request must carry a valid signature under it ...
	public   map[string]bool // ... but for these packages
	requests []Request
	inFlight int
	maxIn    int
}

// NewPS starts a fake PS named name; it stops when the test ends.
func NewPS(t testing.TB, name string) *PS {
	ps := &PS{Name: name, files: map[string]map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /packages/{id}/{path...}", ps.serve)
	ps.Server = httptest.NewServer(mux)
	t.Cleanup(ps.Close)
	return ps
}

// Put makes the PS serve files (path → content) as package id.
func (ps *PS) Put(id string, files map[string][]byte) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	m := map[string][]byte{}
	for k, v := range files {
		m[k] = v
	}
	ps.files[id] = m
}

// SetFault installs f (nil removes it).
func (ps *PS) SetFault(f Fault) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.fault = f
}

// MarkPublic serves package id without a signature, as a Package Server
// does a public package.
func (ps *PS) MarkPublic(id string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.public == nil {
		ps.public = map[string]bool{}
	}
	ps.public[id] = true
}

// RequireSignature makes the PS answer 403 to a request without a valid,
// unexpired signature under key (urlsign), as a Package Server does for a
// signed package: key is the signing key the NS gave it at enrollment.
func (ps *PS) RequireSignature(key []byte) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.key = key
}

// Requests returns the requests received so far.
func (ps *PS) Requests() []Request {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return slices.Clone(ps.requests)
}

// MaxInFlight returns the most requests the PS was serving at once.
func (ps *PS) MaxInFlight() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.maxIn
}

func (ps *PS) serve(w http.ResponseWriter, r *http.Request) {
	id, path := r.PathValue("id"), r.PathValue("path")
	ps.mu.Lock()
	ps.requests = append(ps.requests, Request{PackageID: id, Path: path, Range: r.Header.Get("Range"), Query: r.URL.RawQuery})
	ps.inFlight++
	ps.maxIn = max(ps.maxIn, ps.inFlight)
	data, ok := ps.files[id][path]
	fault, key := ps.fault, ps.key
	if ps.public[id] {
		key = nil
	}
	ps.mu.Unlock()
	defer func() {
		ps.mu.Lock()
		ps.inFlight--
		ps.mu.Unlock()
	}()
	if !ok {
		data = nil
	}
	if fault != nil && fault(w, r, path, data) {
		return
	}
	if key != nil {
		if err := urlsign.Check(key, id, r.URL.Query(), time.Now()); err != nil {
			http.Error(w, "signed package: "+err.Error(), http.StatusForbidden)
			return
		}
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	http.ServeContent(w, r, path, time.Unix(1700000000, 0), bytes.NewReader(data))
}

// DieAfter answers 200 with the full Content-Length of data, sends its
// first n bytes and then closes the connection, as a Package Server that
// dies in the middle of a file.
func DieAfter(w http.ResponseWriter, data []byte, n int) {
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data[:n])
	w.(http.Flusher).Flush()
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic("clienttest: hijack: " + err.Error())
	}
	_ = buf.Flush()
	_ = conn.Close()
}
