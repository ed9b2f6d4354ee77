package httpstatus_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/httpstatus"
)

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    int
	}{
		{"nothing written", func(w http.ResponseWriter, r *http.Request) {}, http.StatusOK},
		{"body only", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }, http.StatusOK},
		{"explicit", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }, http.StatusNotFound},
		{"first header wins", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			w.WriteHeader(http.StatusInternalServerError)
		}, http.StatusForbidden},
		{"body then header", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "x")
			w.WriteHeader(http.StatusTeapot)
		}, http.StatusOK},
		{"read from", func(w http.ResponseWriter, r *http.Request) {
			w.(io.ReaderFrom).ReadFrom(strings.NewReader("body"))
		}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			sw := httpstatus.Wrap(rec)
			tc.handler(sw, httptest.NewRequest("GET", "/", nil))
			if got := sw.Status(); got != tc.want {
				t.Errorf("Status() = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestPassesOn checks that a handler behind the Recorder still reaches
// what the server's writer can do: the client sees the body written by
// ReadFrom, and http.ResponseController finds Flush through Unwrap.
func TestPassesOn(t *testing.T) {
	var sw *httpstatus.Recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw = httpstatus.Wrap(w)
		if _, err := sw.ReadFrom(strings.NewReader("hello")); err != nil {
			t.Errorf("ReadFrom: %v", err)
		}
		if err := http.NewResponseController(sw).Flush(); err != nil {
			t.Errorf("Flush through ResponseController: %v", err)
		}
		if _, _, err := sw.Hijack(); err != nil {
			t.Errorf("Hijack: %v", err)
		}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	if sw == nil || sw.Status() != http.StatusOK {
		t.Fatalf("status not recorded")
	}
}
