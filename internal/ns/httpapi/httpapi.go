// Package httpapi serves the Notification Server's JSON API (docs/api.md):
// authentication, strict decoding, size limits and the mapping of error
// kinds to HTTP statuses. The rules themselves live in package catalog.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

// BlobStore is what the API needs of the blob store.
type BlobStore interface {
	// Size returns a blob's size or an error wrapping wharf.ErrNotFound.
	Size(d wharf.Digest) (int64, error)
	// Open opens a blob for reading; the caller closes it.
	Open(d wharf.Digest) (io.ReadSeekCloser, error)
	// Put stores exactly size bytes of r as blob d, checking the digest;
	// created is false when it was there already.
	Put(d wharf.Digest, r io.Reader, size int64) (created bool, err error)
}

// Limits on request bodies.
const (
	MaxManifestBytes = 64 << 20
	MaxSmallBody     = 1 << 20
	DefaultMaxBlob   = 64 << 30
)

// Options tune the API.
type Options struct {
	// MaxBlobBytes bounds one uploaded blob; 0 means DefaultMaxBlob.
	MaxBlobBytes int64
	// AdminTokenRotated, when set, is told the new admin token after
	// POST /admin-token replaced it (the NS writes its admin.token file).
	AdminTokenRotated func(token string) error
}

// Server is the HTTP API. Build it with New and mount Handler.
type Server struct {
	cat   *catalog.Catalog
	blobs BlobStore
	log   *slog.Logger
	opts  Options
}

// New returns the API over a catalog and a blob store.
func New(cat *catalog.Catalog, blobs BlobStore, log *slog.Logger, opts Options) *Server {
	if opts.MaxBlobBytes <= 0 {
		opts.MaxBlobBytes = DefaultMaxBlob
	}
	return &Server{cat: cat, blobs: blobs, log: log.With("component", "httpapi"), opts: opts}
}

// Handler returns the API alone on a fresh mux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

// handlerFunc is a handler that returns its error for one place to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// agentHandlerFunc is a handler for an authenticated Package Server.
type agentHandlerFunc func(w http.ResponseWriter, r *http.Request, ps catalog.Server) error

func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// writeError answers with the error's status and a JSON body. Server
// failures are logged and answered without their details.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := api.HTTPStatus(err)
	msg := err.Error()
	if code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal server error; the notification server's log has the details"
	} else if code == api.StatusCanceled {
		// The client went away (a PS stopping ends its long poll).
		s.log.Debug("request canceled", "method", r.Method, "path", r.URL.Path)
	} else if r.Method == http.MethodHead && code == http.StatusNotFound {
		// The protocol's own question, not a refusal: a publish asks
		// whether the NS has each blob before it uploads the missing
		// ones (one HEAD per file of every package).
		s.log.Debug("not found", "method", r.Method, "path", r.URL.Path)
	} else {
		s.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wharf"`)
	}
	writeJSON(w, code, api.Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads a JSON body strictly (api.Unmarshal: no unknown or
// case-mismatched member, no duplicate member, valid UTF-8 only, exactly
// one value), at most limit bytes. A body cut short is a 400, one over
// the limit a 413.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return wharf.Errorf(wharf.ErrInvalid, "content type %q: want application/json", ct)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return bodyError(err, limit)
	}
	if err := api.Unmarshal(data, v); err != nil {
		return wharf.Errorf(wharf.ErrInvalid, "malformed JSON body: %v", err)
	}
	return nil
}

// bodyError says why reading a request body failed: over limit bytes
// (413), cut short or too slow (400); anything else is the server's.
func bodyError(err error, limit int64) error {
	var mb *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mb):
		return wharf.Errorf(wharf.ErrTooLarge, "request body over %d bytes", limit)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return wharf.Errorf(wharf.ErrInvalid, "request body cut short: fewer bytes than its Content-Length")
	case errors.As(err, &ne) && ne.Timeout():
		return wharf.Errorf(wharf.ErrInvalid, "request body too slow: %v", err)
	}
	return wharf.Errorf(wharf.ErrInvalid, "read request body: %v", err)
}

// ---- blobs

func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, p catalog.Principal) error {
	d, err := wharf.ParseDigest(r.PathValue("digest"))
	if err != nil {
		return fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	if p.Role == catalog.RoleServer {
		ps := &p.Server
		ok, err := s.cat.BlobAllowed(r.Context(), *ps, d)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("blob %s is in no package assigned to %s: %w", d, ps.Name, wharf.ErrNotFound)
		}
	}
	f, err := s.blobs.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+string(d)+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) error {
	d, err := wharf.ParseDigest(r.PathValue("digest"))
	if err != nil {
		return wharf.Errorf(wharf.ErrInvalid, "%v", err)
	}
	if r.ContentLength < 0 {
		return wharf.Errorf(wharf.ErrInvalid, "blob %s: Content-Length is required", d)
	}
	if r.ContentLength > s.opts.MaxBlobBytes {
		return wharf.Errorf(wharf.ErrTooLarge, "blob %s: %d bytes, at most %d accepted", d, r.ContentLength, s.opts.MaxBlobBytes)
	}
	created, err := s.blobs.Put(d, r.Body, r.ContentLength)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	w.WriteHeader(code)
	return nil
}

// ---- packages

func (s *Server) createPackage(w http.ResponseWriter, r *http.Request) error {
	var m api.PackageManifest
	if err := decode(w, r, MaxManifestBytes, &m); err != nil {
		return err
	}
	p, created, err := s.cat.CreatePackage(r.Context(), m)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		s.log.Info("package created", "package", p.ID, "name", p.Name, "version", p.Version, "files", p.FileCount)
	}
	writeJSON(w, code, p)
	return nil
}

func (s *Server) listPackages(w http.ResponseWriter, r *http.Request, p catalog.Principal) error {
	q := r.URL.Query()
	offset, limit, err := pageParams(r, 0)
	if err != nil {
		return err
	}
	list, err := s.cat.PackagePage(r.Context(), catalog.PackageQuery{Name: q.Get("name"), Version: q.Get("version"),
		Query: q.Get("q"), Offset: offset, Limit: limit, PublicOnly: p.Role == catalog.RoleAnonymous})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// pageParams reads ?offset= and ?limit= (def when absent; 0 means all for
// the package list, none for a server's states).
func pageParams(r *http.Request, def int) (offset, limit int, err error) {
	q := r.URL.Query()
	limit = def
	for name, p := range map[string]*int{"offset": &offset, "limit": &limit} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, wharf.Errorf(wharf.ErrInvalid, "%s=%q: want a count, 0 or more", name, v)
		}
		*p = n
	}
	return offset, limit, nil
}

// getPackage answers a package with its files; the admin also gets the
// states servers reported (where each keeps it), a client does not.
func (s *Server) getPackage(w http.ResponseWriter, r *http.Request, who catalog.Principal) error {
	var (
		p   api.Package
		err error
	)
	if who.Role == catalog.RoleAdmin {
		p, err = s.cat.Package(r.Context(), r.PathValue("id"))
	} else {
		p, err = s.cat.ReadPackage(r.Context(), r.PathValue("id"), who.Role == catalog.RoleAnonymous)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) deletePackage(w http.ResponseWriter, r *http.Request) error {
	if err := s.cat.DeletePackage(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	s.log.Info("package deleted", "package", r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) codebases(w http.ResponseWriter, r *http.Request, who catalog.Principal) error {
	cb, err := s.cat.Codebases(r.Context(), r.PathValue("id"), who.Role == catalog.RoleAnonymous)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cb)
	return nil
}

// ---- enrollment and servers

func (s *Server) createEnrollToken(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength != 0 {
		var empty struct{}
		if err := decode(w, r, MaxSmallBody, &empty); err != nil {
			return err
		}
	}
	tok, err := s.cat.MintEnrollToken(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tok)
	return nil
}

func (s *Server) listServers(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cat.ListServers(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.ServerList{Servers: list})
	return nil
}

func (s *Server) getServer(w http.ResponseWriter, r *http.Request) error {
	offset, limit, err := pageParams(r, api.DefaultServerPackages)
	if err != nil {
		return err
	}
	srv, err := s.cat.ServerPage(r.Context(), r.PathValue("name"), offset, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, srv)
	return nil
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request) error {
	var req api.EnrollRequest
	if err := decode(w, r, MaxSmallBody, &req); err != nil {
		return err
	}
	e, err := s.cat.Enroll(r.Context(), req)
	if err != nil {
		return err
	}
	s.log.Info("package server enrolled", "server", e.Name, "url", req.URL)
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	st := s.cat.PollStats()
	writeJSON(w, http.StatusOK, api.PollStats{Waiting: st.Waiting, Wakes: st.Wakes, Loads: st.Loads})
	return nil
}

// ---- agent

func (s *Server) agentConfig(w http.ResponseWriter, r *http.Request, ps catalog.Server) error {
	wait := catalog.DefaultPollWait
	if v := r.URL.Query().Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || time.Duration(n)*time.Second > catalog.MaxPollWait {
			return wharf.Errorf(wharf.ErrInvalid, "wait %q: want whole seconds from 0 to %d", v, int(catalog.MaxPollWait/time.Second))
		}
		wait = time.Duration(n) * time.Second
	}
	// The PS says where it serves packages on every poll: a PS restarted
	// on another port or with TLS is in the codebases from its first poll.
	if u := r.URL.Query().Get("url"); u != "" {
		if err := s.cat.SetServerURL(r.Context(), ps, u); err != nil {
			return err
		}
	}
	body, etag, changed, err := s.cat.WaitConfig(r.Context(), ps, r.Header.Get("If-None-Match"), wait)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-store")
	if !changed {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

func (s *Server) agentPackage(w http.ResponseWriter, r *http.Request, ps catalog.Server) error {
	p, err := s.cat.AgentPackage(r.Context(), ps, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) agentStates(w http.ResponseWriter, r *http.Request, ps catalog.Server) error {
	var body api.PackageStates
	if err := decode(w, r, MaxManifestBytes, &body); err != nil {
		return err
	}
	if err := s.cat.ReportStates(r.Context(), ps, body.States); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
