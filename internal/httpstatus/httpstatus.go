// Package httpstatus records the status code a handler answered with, for
// the metrics of both servers (requests by route and status on the NS, by
// status on the PS). It is a leaf: net/http only.
package httpstatus

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
)

// Recorder wraps a ResponseWriter and remembers the status written. It
// passes on what the wrapped writer can do: ReadFrom (so a file still goes
// by sendfile), Flush, Hijack, and Unwrap for http.ResponseController.
type Recorder struct {
	http.ResponseWriter
	status int
}

// Wrap returns a Recorder of w.
func Wrap(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// Status returns the status the client received: the one written, or 200
// when the handler wrote none (net/http then answers 200 itself).
func (w *Recorder) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// WriteHeader implements http.ResponseWriter.
func (w *Recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *Recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom implements io.ReaderFrom with the wrapped writer's, when it has
// one (net/http's: sendfile from a file).
func (w *Recorder) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.ResponseWriter, r)
}

// Flush implements http.Flusher.
func (w *Recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack implements http.Hijacker when the wrapped writer does.
func (w *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

// Unwrap returns the wrapped writer (http.ResponseController).
func (w *Recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
