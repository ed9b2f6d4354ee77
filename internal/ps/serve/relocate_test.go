package serve_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/clock/clocktest"
	"github.com/wharf-project/wharf/internal/ps/pstest"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/serve"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/wharf"
)

// readyPackage stores a ready package with one file in root/<id>.
func readyPackage(t *testing.T, st *store.Store, root string, content []byte) string {
	t.Helper()
	id := string(wharf.NewPackageID())
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := store.Package{ID: id, Name: "p", Version: "1", Root: root, Path: dir, State: api.StateDownloading,
		Size: int64(len(content)), FileCount: 1,
		Files: []store.File{{File: wharf.File{Path: "file.bin", Size: int64(len(content)), SHA256: wharf.Digest(pstest.Sum(content))}}}}
	if err := st.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkReady(ctx, id, map[string]time.Time{"file.bin": time.Unix(1700000000, 0)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestServingFollowsAMovingPackage moves a package's folder between two
// roots over and over, as a same-volume relocation does (rename first, the
// switch in the state DB a few milliseconds later), while clients download
// it: not one request may fail.
func TestServingFollowsAMovingPackage(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rootA, rootB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.MkdirAll(rootB, 0o755)
	content := bytes.Repeat([]byte("relocating "), 20_000)
	id := readyPackage(t, st, rootA, content)
	srv := httptest.NewServer(serve.New(st, nil, clock.Real{}, pstest.Logger(t)))
	defer srv.Close()

	stop := make(chan struct{})
	var moves atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the relocation
		defer wg.Done()
		idx := st.RelocationIndex()
		from, to := rootA, rootB
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := os.Rename(filepath.Join(from, id), filepath.Join(to, id)); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(3 * time.Millisecond) // syncs and the commit
			if err := idx.SetLocation(context.Background(), wharf.PackageID(id), relocate.Location{Folder: filepath.Join(to, id)}); err != nil {
				t.Error(err)
				return
			}
			moves.Add(1)
			from, to = to, from
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var requests, failures atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(srv.URL + "/packages/" + id + "/file.bin")
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				requests.Add(1)
				if resp.StatusCode != 200 || !bytes.Equal(body, content) {
					failures.Add(1)
					t.Errorf("GET during a move: %d, %d bytes: %.100s", resp.StatusCode, len(body), body)
				}
			}
		}()
	}
	// At least a second, and until enough happened (a loaded machine, or
	// Wine, serves fewer requests a second), 20 s at most.
	start := time.Now()
	for time.Since(start) < time.Second || (time.Since(start) < 20*time.Second && (moves.Load() < 20 || requests.Load() < 100)) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests during %d moves in %s, %d failed", requests.Load(), moves.Load(), time.Since(start).Round(time.Millisecond), failures.Load())
	if moves.Load() < 20 || requests.Load() < 100 {
		t.Errorf("too little happened: %d moves, %d requests", moves.Load(), requests.Load())
	}
}

// TestServingGivesUpOnAMissingFolder: a folder that stays missing is 404
// after the bounded retries, not a hang.
func TestServingGivesUpOnAMissingFolder(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := readyPackage(t, st, filepath.Join(dir, "a"), []byte("x"))
	os.RemoveAll(filepath.Join(dir, "a", id))
	c := clocktest.NewInstant()
	srv := httptest.NewServer(serve.New(st, nil, c, pstest.Logger(t)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/packages/" + id + "/file.bin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
	var waited time.Duration
	for _, w := range c.Waits() {
		waited += w
	}
	if n := len(c.Waits()); n != 12 || waited < 2*time.Second || waited > 5*time.Second {
		t.Errorf("%d waits, %v in all; want 12 waits, 2 to 5 s", n, waited)
	}
}

func TestGate(t *testing.T) {
	var hits atomic.Int64
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); w.WriteHeader(200) })
	g := serve.NewGate(next, customIDs{"c1": true})
	srv := httptest.NewServer(g)
	defer srv.Close()
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("/packages/x/y"); r.StatusCode != 200 {
		t.Fatalf("open gate: %d", r.StatusCode)
	}
	g.Unavailable(1500 * time.Millisecond)
	r := get("/packages/x/y")
	if r.StatusCode != 503 || r.Header.Get("Retry-After") != "2" {
		t.Errorf("closed gate: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := get("/other"); r.StatusCode != 200 {
		t.Errorf("closed gate, not a package path: %d", r.StatusCode)
	}
	// A custom-location package, which relocation never moves, stays
	// served (issue 16: it answered 503 too).
	if r := get("/packages/c1/y"); r.StatusCode != 200 {
		t.Errorf("closed gate, a custom-location package: %d, want 200", r.StatusCode)
	}
	g.Available()
	if r := get("/packages/x/y"); r.StatusCode != 200 {
		t.Errorf("reopened gate: %d", r.StatusCode)
	}
	if hits.Load() != 4 {
		t.Errorf("%d requests got through, want 4", hits.Load())
	}
}

// customIDs is a serve.Custom that knows a fixed set.
type customIDs map[string]bool

func (c customIDs) IsCustom(id string) bool { return c[id] }

// TestServingDoesNotWaitForALateSwitch: a package renamed to its new
// folder whose switch has not come yet (the syncs and the commit are slow)
// is served from the new folder at once, found through its open journal
// entry, with no wait at all, however long the switch takes; a partial copy
// in a temporary folder is never served.
func TestServingDoesNotWaitForALateSwitch(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rootA, rootB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.MkdirAll(rootB, 0o755)
	content := []byte("moved before its switch")
	id := readyPackage(t, st, rootA, content)
	c := clocktest.NewInstant()
	srv := httptest.NewServer(serve.New(st, nil, c, pstest.Logger(t)))
	defer srv.Close()
	get := func() (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/packages/" + id + "/file.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	src, dest := filepath.Join(rootA, id), filepath.Join(rootB, id)
	ent := relocate.Entry{Key: id, Kind: relocate.KindMove, Package: wharf.PackageID(id), Step: relocate.StepRename,
		Target: rootB, Source: src, Dest: dest, Temp: filepath.Join(rootB, ".wharf-relocate", id)}
	if err := st.RelocationJournal().Begin(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(src, dest); err != nil {
		t.Fatal(err)
	}
	if code, body := get(); code != 200 || !bytes.Equal(body, content) {
		t.Errorf("renamed, not switched: %d %q", code, body)
	}
	if w := c.Waits(); len(w) != 0 {
		t.Errorf("serving waited %v for the switch", w)
	}
	if err := st.RelocationIndex().SetLocation(ctx, wharf.PackageID(id), relocate.Location{Folder: dest}); err != nil {
		t.Fatal(err)
	}
	if err := st.RelocationJournal().Close(ctx, id); err != nil {
		t.Fatal(err)
	}
	if code, body := get(); code != 200 || !bytes.Equal(body, content) {
		t.Errorf("switched: %d %q", code, body)
	}

	// A copy under way: its temporary folder holds a partial file, and is
	// not a place to serve from, even with the old folder gone.
	temp := filepath.Join(rootA, ".wharf-relocate", id)
	os.MkdirAll(temp, 0o755)
	os.WriteFile(filepath.Join(temp, "file.bin"), content[:5], 0o644)
	ent = relocate.Entry{Key: id, Kind: relocate.KindMove, Package: wharf.PackageID(id), Step: relocate.StepCopy,
		Target: rootA, Source: dest, Dest: filepath.Join(rootA, id), Temp: temp}
	if err := st.RelocationJournal().Begin(ctx, ent); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dest)
	if code, body := get(); code != 404 {
		t.Errorf("old folder gone during a copy: %d %q, want 404", code, body)
	}
}
