package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/wharf"
)

func TestStorePersistsAndResolves(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state", "ps.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	id := string(wharf.NewPackageID())
	p := store.Package{ID: id, Name: "n", Version: "v", Signed: true, Root: "/r", Path: "/r/" + id,
		State: api.StateDownloading, Size: 3, FileCount: 2,
		Files: []store.File{{File: wharf.File{Path: "b/c", Size: 2, SHA256: "bb"}}, {File: wharf.File{Path: "a", Size: 1, SHA256: "aa"}}}}
	if err := st.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Resolve(id, "a"); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("resolve while downloading: got %v, want not found", err)
	}
	mt := time.Unix(1700000000, 123).UTC()
	if err := st.MarkReady(ctx, id, map[string]time.Time{"a": mt, "b/c": mt}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkReady(ctx, id, map[string]time.Time{"zz": mt}, time.Now()); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("mark ready with an unknown file: got %v", err)
	}
	st.Close()

	st, err = store.Open(ctx, path) // reopen: everything came from the DB
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, ok := st.Get(id)
	if !ok || got.State != api.StateReady || !got.Signed || got.Root != "/r" || len(got.Files) != 2 || got.Files[0].Path != "a" {
		t.Fatalf("after reopen: got %+v", got)
	}
	if !got.Files[1].ModTime.Equal(mt) {
		t.Errorf("mtime: got %v, want %v", got.Files[1].ModTime, mt)
	}
	res, err := st.Resolve(id, "b/c")
	if err != nil || res.Dir != "/r/"+id || res.File.SHA256 != "bb" || !res.Signed {
		t.Errorf("resolve: got %+v, %v", res, err)
	}
	if _, err := st.Resolve(id, "b"); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("resolve a folder: got %v", err)
	}
	if !st.SetRootAvailable("/r", false, "gone") || st.SetRootAvailable("/r", false, "gone") {
		t.Error("SetRootAvailable: want changed once")
	}
	if _, err := st.Resolve(id, "a"); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("resolve on an unavailable root: got %v", err)
	}
	if s, r := st.List()[0].Reported(); s != api.StateUnavailable || r != "gone" {
		t.Errorf("reported: %s %s", s, r)
	}
	st.SetRootAvailable("/r", true, "")
	if got := st.Roots(); len(got) != 1 || got[0] != "/r" || !st.HasPackagesIn("/r") {
		t.Errorf("roots: %v", got)
	}
	if err := st.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Get(id); ok || st.HasPackagesIn("/r") {
		t.Error("deleted package still there")
	}
}
