package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
)

// partial is a file being downloaded: the temporary file, the hash of the
// bytes written to it so far and how many there are.
type partial struct {
	f    *os.File
	h    hash.Hash
	n    int64
	from map[int]bool // codebases that delivered any of the n bytes
	bar  progress
}

func newPartial(f *os.File, bar progress) *partial {
	return &partial{f: f, h: sha256.New(), from: map[int]bool{}, bar: bar}
}

// reset throws the bytes away, to start the file again from zero.
func (p *partial) reset() error {
	p.bar.add(-p.n)
	p.n = 0
	p.h.Reset()
	clear(p.from)
	if err := p.f.Truncate(0); err != nil {
		return err
	}
	_, err := p.f.Seek(0, io.SeekStart)
	return err
}

func (p *partial) sum() string { return hex.EncodeToString(p.h.Sum(nil)) }

// failKind says what a failed attempt means for the next one.
type failKind int

const (
	// transient: the server may do better later; the bytes received so far
	// are kept.
	transient failKind = iota
	// refused: the server will not serve this file (4xx); try another.
	refused
	// wrongContent: the server serves other bytes than the manifest
	// promises; try another.
	wrongContent
	// restart: the server did not honour the range; the file was reset and
	// the same server can be asked again from zero at once.
	restart
)

// attemptError is a failed attempt to fetch a file from one codebase. Any
// other error (the local disk, a cancelled context) ends the download.
type attemptError struct {
	kind failKind
	err  error
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

func failf(kind failKind, format string, args ...any) error {
	return &attemptError{kind: kind, err: fmt.Errorf(format, args...)}
}

// errStalled cancels a response that stopped delivering bytes.
var errStalled = errors.New("no data received")

// transfer fills p with the bytes of f, trying the codebases in turn, and
// checks their SHA-256. See the package documentation for the rules.
func (d *download) transfer(ctx context.Context, f api.File, p *partial) error {
	ruledOut := make([]bool, len(d.cbs))
	lastErr := make([]error, len(d.cbs))
	for round := 0; round < d.opt.Rounds && slices.Contains(ruledOut, false); round++ {
		if round > 0 {
			if err := d.opt.Sleep(ctx, d.opt.Backoff(round)); err != nil {
				return fmt.Errorf("get %s: %w", f.Path, err)
			}
		}
		for _, i := range d.order() {
			if ruledOut[i] {
				continue
			}
			c := d.cbs[i]
			err := d.fetch(ctx, i, f, p)
			var ae *attemptError
			if errors.As(err, &ae) && ae.kind == restart {
				d.opt.Log.Warn("package server ignored the range; starting the file again",
					"package", d.pkg.ID, "path", f.Path, "server", c.name(), "err", err)
				err = d.fetch(ctx, i, f, p)
			}
			if err == nil {
				if got := p.sum(); got != f.SHA256 {
					from := p.from
					err = failf(wrongContent, "sha256 mismatch: got %s, want %s", got, f.SHA256)
					// Any server that delivered some of these bytes may be
					// the wrong one: rule them all out for this file.
					for j := range from {
						ruledOut[j] = true
						lastErr[j] = err
					}
					if rerr := p.reset(); rerr != nil {
						return fmt.Errorf("get %s: reset temporary file: %w", f.Path, rerr)
					}
				} else {
					c.down.Store(false)
					return nil
				}
			}
			if ctx.Err() != nil {
				return fmt.Errorf("get %s from %s: %w", f.Path, c.name(), ctx.Err())
			}
			if !errors.As(err, &ae) {
				return fmt.Errorf("get %s from %s: %w", f.Path, c.name(), err)
			}
			lastErr[i] = err
			switch ae.kind {
			case refused, wrongContent:
				ruledOut[i] = true
			case transient, restart:
				c.down.Store(true)
			}
			d.opt.Log.Warn("download failed; trying the next package server",
				"package", d.pkg.ID, "path", f.Path, "server", c.name(), "offset", p.n, "err", err)
		}
	}
	var msgs []string
	var only error
	for i, err := range lastErr {
		if err != nil {
			only = fmt.Errorf("get %s from %s: %w", f.Path, d.cbs[i].name(), err)
			msgs = append(msgs, d.cbs[i].name()+": "+err.Error())
		}
	}
	if len(msgs) == 1 {
		return only
	}
	// One line: the CLI prints only the first line of an error.
	return fmt.Errorf("get %s: every package server failed: %s", f.Path, strings.Join(msgs, "; "))
}

// fetch makes one request for f to codebase i, from byte p.n on, and
// appends what it receives to p. It returns nil when p holds f.Size bytes;
// their hash is the caller's to check.
func (d *download) fetch(ctx context.Context, i int, f api.File, p *partial) error {
	c := d.cbs[i]
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.fileURL(f.Path), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if p.n > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", p.n))
	}
	// Time out a server that stops sending in the middle of the headers or
	// the body; every received chunk pushes the deadline back.
	watchdog := time.AfterFunc(d.opt.StallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()

	resp, err := d.opt.HTTPClient.Do(req)
	if err != nil {
		if context.Cause(ctx) == errStalled {
			err = fmt.Errorf("%w for %v", errStalled, d.opt.StallTimeout)
		}
		return failf(transient, "%w", err)
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != f.Size {
			return failf(wrongContent, "server has %d bytes, want %d", resp.ContentLength, f.Size)
		}
		if p.n > 0 {
			// The server ignored the range and sends the whole file: take it.
			d.opt.Log.Warn("package server ignored the range; starting the file again",
				"package", d.pkg.ID, "path", f.Path, "server", c.name(), "offset", p.n)
			if err := p.reset(); err != nil {
				return fmt.Errorf("reset temporary file: %w", err)
			}
		}
	case code == http.StatusPartialContent && p.n > 0:
		first, last, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || first != p.n || last != f.Size-1 || size >= 0 && size != f.Size {
			if err := p.reset(); err != nil {
				return fmt.Errorf("reset temporary file: %w", err)
			}
			return failf(restart, "asked for bytes %d-, got Content-Range %q", p.n, resp.Header.Get("Content-Range"))
		}
	case code == http.StatusRequestedRangeNotSatisfiable:
		return failf(wrongContent, "server cannot send bytes %d- of %d (HTTP %d)", p.n, f.Size, code)
	case code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return failf(transient, "%s", httpStatus(resp))
	default:
		return failf(refused, "%s", httpStatus(resp))
	}

	buf := make([]byte, 64<<10)
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			watchdog.Reset(d.opt.StallTimeout)
			if p.n+int64(m) > f.Size {
				// Its earlier bytes are suspect too.
				if err := p.reset(); err != nil {
					return fmt.Errorf("reset temporary file: %w", err)
				}
				return failf(wrongContent, "server sends more than %d bytes", f.Size)
			}
			if _, err := p.f.Write(buf[:m]); err != nil {
				return fmt.Errorf("write temporary file: %w", err)
			}
			p.h.Write(buf[:m])
			p.n += int64(m)
			p.from[i] = true
			c.received.Add(int64(m))
			p.bar.add(int64(m))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if context.Cause(ctx) == errStalled {
				return failf(transient, "at byte %d of %d: %w for %v", p.n, f.Size, errStalled, d.opt.StallTimeout)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return failf(transient, "at byte %d of %d: %w", p.n, f.Size, rerr)
		}
	}
	if p.n < f.Size {
		return failf(transient, "response ended at byte %d of %d", p.n, f.Size)
	}
	return nil
}

// httpStatus describes an error answer: its status and the start of its
// body, which a Package Server fills with {"error": "..."} or text.
func httpStatus(resp *http.Response) string {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(data))
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if msg == "" {
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, resp.StatusCode)
}

// parseContentRange parses "bytes FIRST-LAST/SIZE"; size is -1 for "*".
// The numbers are plain decimals (no sign, no leading zero), FIRST <= LAST,
// and LAST < SIZE: anything else is not a range this client asked for.
func parseContentRange(s string) (first, last, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	first, ok1 := decimal(a)
	last, ok2 := decimal(b)
	size, ok3 := int64(-1), true
	if total != "*" {
		size, ok3 = decimal(total)
	}
	if !ok1 || !ok2 || !ok3 || last < first || size >= 0 && last >= size {
		return 0, 0, 0, false
	}
	return first, last, size, true
}

// decimal parses a non-negative decimal written the one way: digits only,
// no leading zero (but "0").
func decimal(s string) (int64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// sha256Of hashes everything r delivers.
func sha256Of(r io.Reader) (sum string, n int64, err error) {
	h := sha256.New()
	n, err = io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}
