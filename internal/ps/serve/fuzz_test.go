package serve_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/pstest"
)

// FuzzRange: whatever Range (and If-Range) header a client sends, the
// Package Server answers 200 with the whole file, 206 with exactly the
// bytes its Content-Range (or each part's) names, or 416 naming the size —
// never a 5xx, never a byte that is not the file's.
func FuzzRange(f *testing.F) {
	fx := newFixture(f)
	h := fx.srv.Config.Handler
	path := "/packages/" + fx.public + "/setup.exe"
	for _, s := range []string{"bytes=0-", "bytes=5-9", "bytes=-3", "bytes=100-", "bytes=3-1", "bytes=0-0,5-6", "bytes=", "items=0-1",
		"bytes=0-99999999999999999999", "bytes= 1 - 2 ", "bytes=-0", "bytes=1-2,1-2,1-2", "bytes=27-27"} {
		f.Add(s, "")
	}
	f.Add("bytes=0-4", `"`+pstest.Sum(fx.content)+`"`)
	f.Add("bytes=0-4", `"not the etag"`)
	f.Fuzz(func(t *testing.T, rng, ifRange string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header["Range"] = []string{rng}
		if ifRange != "" {
			req.Header["If-Range"] = []string{ifRange}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		size := int64(len(fx.content))
		switch rec.Code {
		case http.StatusOK:
			if !bytes.Equal(body, fx.content) {
				t.Fatalf("Range %q: 200 with %q", rng, body)
			}
		case http.StatusRequestedRangeNotSatisfiable:
			if got := rec.Header().Get("Content-Range"); got != "bytes */"+strconv.FormatInt(size, 10) {
				t.Fatalf("Range %q: 416 with Content-Range %q", rng, got)
			}
		case http.StatusPartialContent:
			mt, params, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
			if mt != "multipart/byteranges" {
				checkPart(t, rng, rec.Header().Get("Content-Range"), body, fx.content)
				return
			}
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Range %q: a multipart answer that does not parse: %v", rng, err)
				}
				data, _ := io.ReadAll(p)
				checkPart(t, rng, p.Header.Get("Content-Range"), data, fx.content)
			}
		default:
			t.Fatalf("Range %q, If-Range %q: status %d %s", rng, ifRange, rec.Code, body)
		}
	})
}

// checkPart checks that data is the bytes of content that cr ("bytes
// A-B/SIZE") names.
func checkPart(t *testing.T, rng, cr string, data, content []byte) {
	t.Helper()
	var a, b, size int64
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		t.Fatalf("Range %q: Content-Range %q", rng, cr)
	}
	if _, err := fmt.Sscanf(rest, "%d-%d/%d", &a, &b, &size); err != nil || size != int64(len(content)) || a < 0 || b < a || b >= size {
		t.Fatalf("Range %q: Content-Range %q", rng, cr)
	}
	if !bytes.Equal(data, content[a:b+1]) {
		t.Fatalf("Range %q: part %q holds %q, want %q", rng, cr, data, content[a:b+1])
	}
}
