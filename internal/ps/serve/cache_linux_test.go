package serve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/wharf"
)

// TestOpenFilesAreBounded: serving many small files keeps at most the
// bounded number of files and folders open, the least recently used
// closed.
func TestOpenFilesAreBounded(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := New(st, nil, nil, nil)
	h.files.max, h.folders.max = 40, 15
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	fds := func() int {
		es, _ := os.ReadDir("/proc/self/fd")
		return len(es)
	}
	before := fds()
	const n = 200
	for i := range n {
		id := string(wharf.NewPackageID())
		pdir := filepath.Join(dir, "root", id)
		os.MkdirAll(pdir, 0o755)
		os.WriteFile(filepath.Join(pdir, "f"), []byte{byte(i)}, 0o644)
		p := store.Package{ID: id, Name: "p", Version: "1", Root: filepath.Dir(pdir), Path: pdir, State: api.StateDownloading,
			Size: 1, FileCount: 1, Files: []store.File{{File: wharf.File{Path: "f", Size: 1, SHA256: "x"}}}}
		if err := st.Put(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkReady(context.Background(), id, map[string]time.Time{"f": time.Now()}, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(srv.URL + "/packages/" + id + "/f")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("package %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
	if h.files.len() > 40 || h.files.lru.Len() > 40 || h.folders.len() > 15 {
		t.Errorf("kept %d files and %d folders, want at most 40 and 15", h.files.len(), h.folders.len())
	}
	if grew := fds() - before; grew > 40+15+16 {
		t.Errorf("%d more descriptors open after serving %d packages", grew, n)
	}
	// Idle handles close by themselves a moment later.
	deadline := time.Now().Add(10 * time.Second)
	for h.files.len()+h.folders.len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d files and %d folders still open 10 s after the last request", h.files.len(), h.folders.len())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if grew := fds() - before; grew > 16 {
		t.Errorf("%d more descriptors open once idle", grew)
	}
}
