// Package serve answers clients' downloads from a Package Server:
// GET and HEAD /packages/{package id}/{relative path}.
//
// Every request resolves through the state DB: only a file listed in the
// manifest of a ready package on an available store root is served, and it
// is opened through an os.Root on the package folder (on Windows, a walk
// from a handle of the folder that refuses reparse points and shares
// delete: see openIn), so neither a hostile path nor a link planted in the
// folder reaches anything outside it, and serving never stops a move.
// Anything else is 404; a signed package without a valid, unexpired
// signature is 403. Range, If-None-Match, If-Modified-Since and HEAD come
// from http.ServeContent; the ETag is the file's SHA-256 and Last-Modified
// the time the file was written, both from the state DB.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/urlsign"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Index finds what to serve; *store.Store implements it. Both methods fail
// with an error wrapping wharf.ErrNotFound for anything that must not be
// served (unknown, not ready, unavailable, not in the manifest).
type Index interface {
	// ResolvePackage tells whether package id may be served and whether
	// it is signed.
	ResolvePackage(id string) (signed bool, err error)
	// Resolve finds file rel (already validated) of package id.
	Resolve(id, rel string) (store.Resolved, error)
}

var _ Index = (*store.Store)(nil)

// Handler serves package files.
type Handler struct {
	idx   Index
	key   []byte
	clock clock.Clock
	log   *slog.Logger
}

// New returns a handler serving from idx, checking signed packages' URLs
// with key.
func New(idx Index, key []byte, c clock.Clock, log *slog.Logger) *Handler {
	if c == nil {
		c = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{idx: idx, key: key, clock: c, log: log.With("component", "serve")}
}

// Prefix is the path under which packages are served.
const Prefix = "/packages/"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, "method not allowed: use GET or HEAD")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		writeError(w, r, http.StatusNotFound, "not found")
		return
	}
	// An escaped slash or backslash would change how the path splits.
	if raw := strings.ToLower(r.URL.RawPath); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		writeError(w, r, http.StatusNotFound, "not found: encoded separator in path")
		return
	}
	id, rel, ok := strings.Cut(rest, "/")
	if !ok {
		writeError(w, r, http.StatusNotFound, "not found")
		return
	}
	if _, err := wharf.ParsePackageID(id); err != nil {
		writeError(w, r, http.StatusNotFound, "not found: "+err.Error())
		return
	}
	signed, err := h.idx.ResolvePackage(id)
	if err != nil {
		h.notFound(w, r, err)
		return
	}
	if signed {
		if err := urlsign.Check(h.key, id, r.URL.Query(), h.clock.Now()); err != nil {
			writeError(w, r, http.StatusForbidden, fmt.Sprintf("package %s is signed: %v", id, err))
			return
		}
	}
	if err := wharf.ValidateRelPath(rel); err != nil {
		h.log.Debug("refused path", "package", id, "path", rel, "err", err)
		writeError(w, r, http.StatusNotFound, "not found: "+err.Error())
		return
	}
	res, err := h.idx.Resolve(id, rel)
	if err != nil {
		h.notFound(w, r, err)
		return
	}
	h.serveFile(w, r, id, rel, res)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, wharf.ErrNotFound) {
		h.log.Error("resolve", "path", r.URL.Path, "err", err)
		writeError(w, r, http.StatusInternalServerError, "internal error")
		return
	}
	writeError(w, r, http.StatusNotFound, err.Error())
}

// movedRetries bounds how often a request looks a package up again when
// its folder is missing: it may have just moved (see openFile).
const movedRetries = 12

func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, id, rel string, res store.Resolved) {
	log := h.log.With("package", id, "path", rel)
	f, res, err := h.openFile(r.Context(), id, rel, res)
	if err != nil {
		switch {
		case errors.Is(err, wharf.ErrNotFound):
			writeError(w, r, http.StatusNotFound, err.Error())
		case errors.Is(err, errFolderMissing):
			log.Error("open package folder", "err", err)
			writeError(w, r, http.StatusNotFound, "not found: package folder missing")
		default:
			if !errors.Is(err, os.ErrNotExist) {
				// An escape attempt (symlink), a permission problem, I/O.
				log.Warn("open package file", "err", err)
			}
			writeError(w, r, http.StatusNotFound, "not found")
		}
		return
	}
	defer f.Close()
	size, regular, err := statOpen(f)
	if err != nil || !regular {
		writeError(w, r, http.StatusNotFound, "not found")
		return
	}
	if size != res.File.Size {
		log.Error("package file damaged on disk", "size", size, "want", res.File.Size)
		writeError(w, r, http.StatusInternalServerError, "package file damaged on this server")
		return
	}
	hd := w.Header()
	hd.Set("ETag", `"`+string(res.File.SHA256)+`"`)
	hd.Set("X-Content-Type-Options", "nosniff")
	if hd.Get("Content-Type") == "" {
		hd.Set("Content-Type", "application/octet-stream")
	}
	http.ServeContent(w, r, "", res.File.ModTime, f)
}

var errFolderMissing = errors.New("package folder missing")

// openFile opens file rel of package id in the folder res names, under an
// os.Root of that folder.
//
// A relocation moves package folders while serving goes on (SPEC §6.4).
// The index names the old folder until the package's switch, which comes
// after the new place is durable (syncs and a commit: any time at all on a
// slow disk), and a cross-volume move removes the old folder right after
// its switch. So while a package moves, the index also names the folders
// the move passes through (res.Also, from the move's open journal entry),
// in the order it passes through them: when the folder the index names is
// missing, those are tried in that order, which finds the package in one
// pass whatever the timing, since each of them is absent or whole and the
// package only goes forward. When none holds it (the lookup was made just
// before the move began, or just before its switch), the package is looked
// up again and the new answer tried at once; the same answer again only
// after a short wait, doubling from 1 ms, up to movedRetries times, the
// request's context permitting. A file once open stays readable whatever
// happens to its name. Only then is the request answered 404.
func (h *Handler) openFile(ctx context.Context, id, rel string, res store.Resolved) (*os.File, store.Resolved, error) {
	wait := time.Millisecond
	for attempt := 0; ; attempt++ {
		f, err := openAny(res, rel)
		if err == nil || !errors.Is(err, os.ErrNotExist) || attempt >= movedRetries {
			return f, res, err
		}
		again, rerr := h.idx.Resolve(id, rel)
		if rerr != nil {
			return nil, res, rerr
		}
		if again.Dir != res.Dir || !slices.Equal(again.Also, res.Also) {
			h.log.Debug("package moved while being served; following it", "package", id, "from", res.Dir, "to", again.Dir, "also", again.Also)
			res = again
			continue
		}
		if err := clock.Sleep(ctx, h.clock, wait); err != nil {
			return nil, res, err
		}
		wait = min(2*wait, time.Second)
	}
}

// openAny opens rel in res.Dir or, when that folder or file is missing, in
// the first of res.Also that has it. The error is res.Dir's.
func openAny(res store.Resolved, rel string) (*os.File, error) {
	f, err := openIn(res.Dir, rel)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	for _, dir := range res.Also {
		if g, aerr := openIn(dir, rel); aerr == nil {
			return g, nil
		}
	}
	return nil, err
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(api.Error{Error: msg})
	}
}

// NewServer wraps h in an http.Server with timeouts fit for large
// downloads: headers must arrive within 10 s, idle connections close after
// 2 minutes; a response may take as long as it needs.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.With("component", "serve").Handler(), slog.LevelWarn),
	}
}
