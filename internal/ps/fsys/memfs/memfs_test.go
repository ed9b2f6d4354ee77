package memfs_test

import (
	"errors"
	"io/fs"
	"syscall"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/fsys/fsystest"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
)

func TestConformance(t *testing.T) {
	fsystest.Run(t, func(t *testing.T) fsystest.Harness {
		m := memfs.New()
		if err := m.AddVolume("/vol/a", memfs.Volume{}); err != nil {
			t.Fatal(err)
		}
		if err := m.AddVolume("/vol/b", memfs.Volume{}); err != nil {
			t.Fatal(err)
		}
		return fsystest.Harness{FS: m, Dir: "/vol/a", Other: "/vol/b", SetImmutable: m.SetImmutable}
	})
}

func mustExist(t *testing.T, m *memfs.FS, want bool, paths ...string) {
	t.Helper()
	for _, p := range paths {
		_, err := m.Lstat(p)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v (%v)", p, got, want, err)
		}
	}
}

func create(t *testing.T, m *memfs.FS, p, data string, sync bool) {
	t.Helper()
	f, err := m.Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
}

func TestCrashDropsUnsyncedEntries(t *testing.T) {
	m := memfs.New()
	if err := m.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	create(t, m, "/d/synced", "s", true)
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	create(t, m, "/d/unsynced-entry", "u", true) // content synced, entry not
	if err := m.Mkdir("/d/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	mustExist(t, m, true, "/d/synced")
	mustExist(t, m, false, "/d/unsynced-entry", "/d/sub")
}

func TestCrashDropsUnsyncedBytes(t *testing.T) {
	m := memfs.New()
	if err := m.WriteFile("/d/f", []byte("durable")); err != nil {
		t.Fatal(err)
	}
	create(t, m, "/d/g", "never synced", false)
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if b, _ := m.ReadFile("/d/f"); string(b) != "durable" {
		t.Errorf("/d/f = %q", b)
	}
	if b, err := m.ReadFile("/d/g"); err != nil || len(b) != 0 {
		t.Errorf("/d/g = %q, %v; want an empty file (entry durable, bytes not)", b, err)
	}
}

func TestCrashNewFolderNeedsItsParentSynced(t *testing.T) {
	m := memfs.New()
	if err := m.MkdirAll("/t"); err != nil {
		t.Fatal(err)
	}
	if err := m.Mkdir("/t/new", 0o755); err != nil {
		t.Fatal(err)
	}
	create(t, m, "/t/new/f", "x", true)
	if err := m.SyncDir("/t/new"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	mustExist(t, m, false, "/t/new")
}

func TestCrashRenameIsAtomic(t *testing.T) {
	for _, tc := range []struct {
		name     string
		syncs    []string
		atA, atB bool
	}{
		{"no sync", nil, true, false},
		{"only destination synced", []string{"/b"}, true, false},
		{"only source synced", []string{"/a"}, true, false},
		{"both synced", []string{"/b", "/a"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := memfs.New()
			if err := m.WriteFile("/a/pkg/file", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := m.MkdirAll("/b"); err != nil {
				t.Fatal(err)
			}
			if err := m.Rename("/a/pkg", "/b/pkg"); err != nil {
				t.Fatal(err)
			}
			for _, d := range tc.syncs {
				if err := m.SyncDir(d); err != nil {
					t.Fatal(err)
				}
			}
			m.Crash()
			mustExist(t, m, tc.atA, "/a/pkg/file")
			mustExist(t, m, tc.atB, "/b/pkg/file")
		})
	}
}

func TestCrashRemoveAndExchange(t *testing.T) {
	m := memfs.New()
	if err := m.WriteFile("/a/x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFile("/a/y", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("/a/x"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	mustExist(t, m, true, "/a/x")
	if err := m.Exchange("/a/x", "/a/y"); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/a"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("/a/x"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if b, _ := m.ReadFile("/a/x"); string(b) != "y" {
		t.Errorf("/a/x = %q after a synced exchange, want y", b)
	}
}

func TestCrashKillsHandles(t *testing.T) {
	m := memfs.New()
	if err := m.MkdirAll("/a"); err != nil {
		t.Fatal(err)
	}
	f, err := m.Create("/a/f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("a handle from before the crash still writes")
	}
	if m.Pending() != 0 {
		t.Fatalf("Pending = %d after a crash", m.Pending())
	}
}

func TestVolumes(t *testing.T) {
	m := memfs.New()
	if err := m.AddVolume("/small", memfs.Volume{Capacity: 10}); err != nil {
		t.Fatal(err)
	}
	if err := m.AddVolume("/ro", memfs.Volume{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	f, err := m.Create("/small/f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.Write([]byte("0123456789abc"))
	if n != 10 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write past capacity = %d, %v; want 10, ENOSPC", n, err)
	}
	f.Close()
	if _, used, _ := m.Usage("/small"); used != 10 {
		t.Fatalf("used = %d", used)
	}
	if err := m.Remove("/small/f"); err != nil {
		t.Fatal(err)
	}
	if _, used, _ := m.Usage("/small"); used != 0 {
		t.Fatalf("used after remove = %d", used)
	}
	if err := m.Mkdir("/ro/x", 0o755); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Mkdir on a read-only volume = %v", err)
	}
	da, _ := m.Dev("/small")
	db, _ := m.Dev("/ro")
	dr, _ := m.Dev("/")
	if da == db || da == dr {
		t.Fatalf("devices %d %d %d are not distinct", da, db, dr)
	}
}

func TestImmutable(t *testing.T) {
	m := memfs.New()
	if err := m.WriteFile("/s/pkg/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := m.SetImmutable("/s/pkg/f", true); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("/s/pkg/f"); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Remove(immutable) = %v", err)
	}
	if err := m.CanRemove("/s/pkg"); !errors.Is(err, fsys.ErrNotRemovable) {
		t.Fatalf("CanRemove = %v", err)
	}
	// As on Linux, the folder holding an immutable file can be renamed.
	if err := m.Rename("/s/pkg", "/s/pkg2"); err != nil {
		t.Fatalf("Rename of the folder = %v", err)
	}
	if err := m.SetImmutable("/s", true); err != nil {
		t.Fatal(err)
	}
	if err := m.CanRemove("/s/pkg2"); !errors.Is(err, fsys.ErrNotRemovable) {
		t.Fatalf("CanRemove under an immutable parent = %v", err)
	}
}
