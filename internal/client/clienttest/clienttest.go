// Package clienttest provides in-process fakes of the two servers `wharf
// get` talks to: a Notification Server answering the three admin routes the
// client uses, and Package Servers serving package files with
// http.ServeContent, each with a hook to inject faults. Tests of the client
// and of the CLI share them.
package clienttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Token is the admin token the fake NS accepts.
const Token = "test-admin-token"

// NewPackage builds a package whose manifest lists files (path → content),
// sorted by path, with a fresh id.
func NewPackage(name, version string, created time.Time, files map[string][]byte) api.Package {
	p := api.Package{PackageSummary: api.PackageSummary{
		ID: string(wharf.NewPackageID()), Name: name, Version: version,
		Assignment: api.Assignment{All: true}, CreatedAt: created,
	}}
	for path, data := range files {
		sum := sha256.Sum256(data)
		p.Files = append(p.Files, api.File{Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		p.Size += int64(len(data))
	}
	slices.SortFunc(p.Files, func(a, b api.File) int {
		if a.Path < b.Path {
			return -1
		}
		if a.Path > b.Path {
			return 1
		}
		return 0
	})
	p.FileCount = len(p.Files)
	return p
}

// NS is a fake Notification Server: GET /api/v1/packages (with the name and
// version filters), GET /api/v1/packages/{id} and GET
// /api/v1/packages/{id}/codebases, behind the admin token Token.
type NS struct {
	*httptest.Server

	mu        sync.Mutex
	pkgs      []api.Package
	codebases map[string][]api.Codebase
}

// NewNS starts a fake NS; it stops when the test ends.
func NewNS(t testing.TB) *NS {
	ns := &NS{codebases: map[string][]api.Codebase{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/packages", ns.list)
	mux.HandleFunc("GET /api/v1/packages/{id}", ns.get)
	mux.HandleFunc("GET /api/v1/packages/{id}/codebases", ns.getCodebases)
	ns.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+Token {
			writeJSON(w, http.StatusUnauthorized, api.Error{Error: "missing or wrong token"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(ns.Close)
	return ns
}

// Add publishes p, served by cbs in that order.
func (ns *NS) Add(p api.Package, cbs ...api.Codebase) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.pkgs = append(ns.pkgs, p)
	ns.codebases[p.ID] = cbs
}

func (ns *NS) list(w http.ResponseWriter, r *http.Request) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	name, version := r.URL.Query().Get("name"), r.URL.Query().Get("version")
	out := api.PackageList{Packages: []api.PackageSummary{}}
	for _, p := range ns.pkgs {
		if (name == "" || p.Name == name) && (version == "" || p.Version == version) {
			out.Packages = append(out.Packages, p.PackageSummary)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (ns *NS) find(id string) (api.Package, bool) {
	for _, p := range ns.pkgs {
		if p.ID == id {
			return p, true
		}
	}
	return api.Package{}, false
}

func (ns *NS) get(w http.ResponseWriter, r *http.Request) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	p, ok := ns.find(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, api.Error{Error: "package " + r.PathValue("id") + " not found"})
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (ns *NS) getCodebases(w http.ResponseWriter, r *http.Request) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := ns.find(id); !ok {
		writeJSON(w, http.StatusNotFound, api.Error{Error: "package " + id + " not found"})
		return
	}
	writeJSON(w, http.StatusOK, api.Codebases{PackageID: id, Codebases: append([]api.Codebase{}, ns.codebases[id]...)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

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
	query    string // when set, every request must carry exactly this query
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

// RequireQuery makes the PS answer 403 to requests without exactly query q,
// as a PS does for a signed package.
func (ps *PS) RequireQuery(q string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.query = q
}

// Codebase returns the codebase of package id on this PS, with query q.
func (ps *PS) Codebase(id, q string) api.Codebase {
	return api.Codebase{Server: ps.Name, URL: ps.URL + "/packages/" + id + "/", Query: q}
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
	fault, query := ps.fault, ps.query
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
	if query != "" && r.URL.RawQuery != query {
		http.Error(w, "missing, wrong or expired signature", http.StatusForbidden)
		return
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
