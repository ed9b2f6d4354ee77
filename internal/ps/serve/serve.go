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
// signature is 403. A plain GET or HEAD of a whole file is answered
// directly (a small file with its headers in one write, a large one by
// sendfile); Range and conditional requests (If-None-Match,
// If-Modified-Since, ...) go through http.ServeContent. The ETag is the
// file's SHA-256 and Last-Modified the time the file was written, both
// from the state DB. On Linux the package folders being served are kept
// open (a cache of os.Roots, see folders), so a request opens one file.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/httpguard"
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
	idx     Index
	key     []byte
	clock   clock.Clock
	log     *slog.Logger
	folders *folders // package folders kept open (open_*.go)
	files   *files   // small package files kept open (open_*.go)
}

// opened is a package file open for one request, as Handler.open returns
// it: its size and kind from an fstat made for this request, and whether
// it is shared with other requests (kept open between them: read it with
// ReadAt only, never through its offset). Call release when done.
type opened struct {
	f       *os.File
	size    int64
	regular bool
	links   uint64 // hard links: 0 when removed since it was opened
	shared  bool
	release func()
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
	return &Handler{idx: idx, key: key, clock: c, log: log.With("component", "serve"), folders: newFolders(), files: newFiles()}
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
	log := func() *slog.Logger { return h.log.With("package", id, "path", rel) }
	o, res, err := h.openFile(r.Context(), id, rel, res)
	if err != nil {
		switch {
		case errors.Is(err, wharf.ErrNotFound):
			writeError(w, r, http.StatusNotFound, err.Error())
		case errors.Is(err, errFolderMissing):
			log().Error("open package folder", "err", err)
			writeError(w, r, http.StatusNotFound, "not found: package folder missing")
		default:
			if !errors.Is(err, os.ErrNotExist) {
				// An escape attempt (symlink), a permission problem, I/O.
				log().Warn("open package file", "err", err)
			}
			writeError(w, r, http.StatusNotFound, "not found")
		}
		return
	}
	defer o.release()
	f, size := o.f, o.size
	if !o.regular {
		writeError(w, r, http.StatusNotFound, "not found")
		return
	}
	if size != res.File.Size {
		log().Error("package file damaged on disk", "size", size, "want", res.File.Size)
		writeError(w, r, http.StatusInternalServerError, "package file damaged on this server")
		return
	}
	hd := w.Header()
	hd["Etag"] = []string{`"` + string(res.File.SHA256) + `"`}
	hd["X-Content-Type-Options"] = nosniff
	if _, ok := hd["Content-Type"]; !ok {
		hd["Content-Type"] = octetStream
	}
	if !plain(r) {
		switch rangeVerdict(r.Header.Get("Range")) {
		case rangeIgnore:
			r.Header.Del("Range")
		case rangeUnsatisfiable:
			hd["Content-Range"] = []string{"bytes */" + strconv.FormatInt(size, 10)}
			writeError(w, r, http.StatusRequestedRangeNotSatisfiable, "range not satisfiable")
			return
		}
		var content io.ReadSeeker = f
		if o.shared {
			content = io.NewSectionReader(f, 0, size) // never the shared offset
		}
		http.ServeContent(&unsatisfiable{ResponseWriter: w, size: size}, r, "", res.File.ModTime, content)
		return
	}
	// The common case, a whole file with no condition: answered here,
	// without ServeContent's seeks. A small file goes out with its
	// headers in one write; a large one by sendfile.
	hd["Accept-Ranges"] = acceptRanges
	hd["Content-Length"] = []string{strconv.FormatInt(size, 10)}
	if !res.File.ModTime.IsZero() {
		hd["Last-Modified"] = []string{res.File.ModTime.UTC().Format(http.TimeFormat)}
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead || size == 0 {
		return
	}
	if size <= smallFile {
		bp := smallBufs.Get().(*[]byte)
		defer smallBufs.Put(bp)
		b := (*bp)[:size]
		if _, err := f.ReadAt(b, 0); err != nil {
			log().Warn("read package file", "err", err)
			return // the status is out; the client sees a short body
		}
		w.Write(b)
		return
	}
	io.Copy(w, f)
}

// Verdicts of rangeVerdict.
const (
	rangeServe         = iota // as http.ServeContent decides
	rangeIgnore               // a unit other than bytes: ignored (RFC 9110 14.2), the whole file
	rangeUnsatisfiable        // a zero-length suffix ("-0"): nothing to send, 416
)

// rangeVerdict decides what http.ServeContent would get wrong about a
// Range header (found by FuzzRange): it answers 416 to a range unit it
// does not know, which a server must ignore, and 206 with no byte and a
// backwards Content-Range to "bytes=-0".
func rangeVerdict(h string) int {
	if h == "" {
		return rangeServe
	}
	unit, specs, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		if ok {
			return rangeIgnore
		}
		return rangeServe // not a ranges-specifier at all: ServeContent refuses it
	}
	for _, spec := range strings.Split(specs, ",") {
		if n, ok := strings.CutPrefix(strings.TrimSpace(spec), "-"); ok {
			if v, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64); err == nil && v == 0 {
				return rangeUnsatisfiable
			}
		}
	}
	return rangeServe
}

// unsatisfiable gives every 416 of http.ServeContent the Content-Range
// "bytes */SIZE" RFC 9110 asks for (it sends it only when no range
// overlaps the file, not for a malformed one).
type unsatisfiable struct {
	http.ResponseWriter
	size int64
}

func (u *unsatisfiable) WriteHeader(code int) {
	if code == http.StatusRequestedRangeNotSatisfiable && u.Header().Get("Content-Range") == "" {
		u.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(u.size, 10))
	}
	u.ResponseWriter.WriteHeader(code)
}

// ReadFrom keeps sendfile for ranges: the answer's own ReadFrom copies.
func (u *unsatisfiable) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := u.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(u.ResponseWriter, r)
}

// Header values of every answer, shared (never modified).
var (
	nosniff      = []string{"nosniff"}
	octetStream  = []string{"application/octet-stream"}
	acceptRanges = []string{"bytes"}
)

// smallFile is the largest file read into memory and written with its
// headers; larger ones go by sendfile.
const smallFile = 64 << 10

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallFile); return &b }}

// plain reports whether r asks for a whole file with no condition (no
// Range, no If-*): what serveFile answers itself rather than through
// http.ServeContent.
func plain(r *http.Request) bool {
	for _, k := range []string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"} {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	return true
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
func (h *Handler) openFile(ctx context.Context, id, rel string, res store.Resolved) (opened, store.Resolved, error) {
	wait := time.Millisecond
	for attempt := 0; ; attempt++ {
		o, err := h.openAny(res, rel)
		if err == nil || !errors.Is(err, os.ErrNotExist) || attempt >= movedRetries {
			return o, res, err
		}
		again, rerr := h.idx.Resolve(id, rel)
		if rerr != nil {
			return opened{}, res, rerr
		}
		if again.Dir != res.Dir || !slices.Equal(again.Also, res.Also) {
			h.log.Debug("package moved while being served; following it", "package", id, "from", res.Dir, "to", again.Dir, "also", again.Also)
			res = again
			continue
		}
		if err := clock.Sleep(ctx, h.clock, wait); err != nil {
			return opened{}, res, err
		}
		wait = min(2*wait, time.Second)
	}
}

// openAny opens rel in res.Dir or, when that folder or file is missing, in
// the first of res.Also that has it. The error is res.Dir's.
func (h *Handler) openAny(res store.Resolved, rel string) (opened, error) {
	o, err := h.open(res.Dir, rel, res.File.Size)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return o, err
	}
	for _, dir := range res.Also {
		if g, aerr := h.open(dir, rel, res.File.Size); aerr == nil {
			return g, nil
		}
	}
	return opened{}, err
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(api.Error{Error: msg})
	}
}

// NewServer wraps h in an http.Server bounded by limits (package
// httpguard: headers, bodies — a download needs none —, idle connections
// and slow clients); a response may take as long as it needs.
func NewServer(h http.Handler, limits httpguard.Limits, log *slog.Logger) *http.Server {
	return limits.Server(h, log.With("component", "serve"))
}
