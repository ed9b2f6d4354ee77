package serve_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/serve"
	"github.com/wharf-project/wharf/internal/ps/store"
)

// TestOpenFilesNeverServeOldBytes: small files and their folders are kept
// open between requests (on Linux); a file replaced on disk (a damaged
// package discarded and downloaded again into the same folder), a folder
// replaced, and a folder moved away all give the bytes on disk now.
func TestOpenFilesNeverServeOldBytes(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root := filepath.Join(dir, "root")
	first := []byte("first bytes, 22 long..")
	id := readyPackage(t, st, root, first)
	srv := httptest.NewServer(serve.New(st, nil, nil, nil))
	defer srv.Close()
	url := srv.URL + "/packages/" + id + "/file.bin"
	want := func(what string, body []byte) {
		t.Helper()
		for range 3 { // the first request opens; the next ones hit the cache
			resp, got := get(t, "GET", url)
			if resp.StatusCode != 200 || got != string(body) {
				t.Fatalf("%s: HTTP %d %q, want %q", what, resp.StatusCode, got, body)
			}
		}
	}
	want("first", first)

	// The file replaced by a new one of the same size (new bytes: the
	// index says a size, not a digest check per request).
	second := []byte("second bytes 22 long..")
	tmp := filepath.Join(dir, "tmp.bin")
	os.WriteFile(tmp, second, 0o644)
	if err := os.Rename(tmp, filepath.Join(root, id, "file.bin")); err != nil {
		t.Fatal(err)
	}
	want("after the file was replaced", second)

	// The folder replaced by another holding other bytes.
	third := []byte("third bytes, 22 long..")
	pkg := filepath.Join(root, id)
	os.Rename(pkg, pkg+".old")
	os.MkdirAll(pkg, 0o755)
	os.WriteFile(filepath.Join(pkg, "file.bin"), third, 0o644)
	os.RemoveAll(pkg + ".old")
	want("after the folder was replaced", third)
}
