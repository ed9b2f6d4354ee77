package faultfs_test

import (
	"errors"
	"io"
	"syscall"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/fsys/fsystest"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
)

func TestConformance(t *testing.T) {
	fsystest.Run(t, func(t *testing.T) fsystest.Harness {
		m := memfs.New()
		for _, v := range []string{"/a", "/b"} {
			if err := m.AddVolume(v, memfs.Volume{}); err != nil {
				t.Fatal(err)
			}
		}
		return fsystest.Harness{FS: faultfs.New(m), Dir: "/a", Other: "/b", SetImmutable: m.SetImmutable}
	})
}

func seed(t *testing.T) (*memfs.FS, *faultfs.FS) {
	t.Helper()
	m := memfs.New()
	if err := m.WriteFile("/d/f", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	return m, faultfs.New(m)
}

func TestNth(t *testing.T) {
	_, f := seed(t)
	f.Fail(faultfs.Rule{Op: faultfs.OpMkdir, Nth: 2, Err: syscall.ENOSPC})
	if err := f.Mkdir("/d/1", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.Mkdir("/d/2", 0o755); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second Mkdir = %v, want ENOSPC", err)
	}
	if err := f.Mkdir("/d/3", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Lstat("/d/2"); err == nil {
		t.Fatal("a failed Mkdir created the folder")
	}
}

func TestPathRules(t *testing.T) {
	_, f := seed(t)
	f.Fail(faultfs.Rule{Op: faultfs.OpRename, Path: "/d/", Err: syscall.EXDEV})
	f.Fail(faultfs.Rule{Op: faultfs.OpRead, Path: "/d/f"})
	f.Fail(faultfs.Rule{Op: faultfs.OpCanRemove, Path: "/d*", Err: syscall.EPERM})
	if err := f.Rename("/d/f", "/d/g"); !errors.Is(err, fsys.ErrCrossDevice) || !errors.Is(err, syscall.EXDEV) {
		t.Fatalf("Rename = %v, want ErrCrossDevice", err)
	}
	h, err := f.Open("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(h); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Read = %v, want EIO", err)
	}
	h.Close()
	if err := f.CanRemove("/d"); !errors.Is(err, fsys.ErrNotRemovable) || !errors.Is(err, syscall.EPERM) {
		t.Fatalf("CanRemove = %v, want ErrNotRemovable and EPERM", err)
	}
}

func TestShortWrite(t *testing.T) {
	m, f := seed(t)
	f.Fail(faultfs.Rule{Op: faultfs.OpWrite, Short: true})
	h, err := f.Create("/d/g", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n, err := h.Write([]byte("0123456789"))
	if n != 5 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("Write = %d, %v; want 5, short write", n, err)
	}
	h.Close()
	if b, _ := m.ReadFile("/d/g"); string(b) != "01234" {
		t.Fatalf("file holds %q", b)
	}
}

func TestCrashAt(t *testing.T) {
	m, f := seed(t)
	run := func() error {
		if err := f.Mkdir("/d/x", 0o755); err != nil {
			return err
		}
		if err := f.SyncDir("/d"); err != nil {
			return err
		}
		if err := f.RemoveAll("/d/x"); err != nil {
			return err
		}
		return f.SyncDir("/d")
	}
	if err := run(); err != nil {
		t.Fatal(err)
	}
	n := f.Ops()
	if n < 5 {
		t.Fatalf("Ops = %d, want the RemoveAll steps counted too", n)
	}
	for k := 0; k <= n; k++ {
		f.CrashAt(k)
		err := run()
		if k < n && !errors.Is(err, faultfs.ErrCrashed) {
			t.Fatalf("crash at %d: run = %v, want ErrCrashed", k, err)
		}
		if k == n && err != nil {
			t.Fatalf("crash at %d (past the end): %v", k, err)
		}
		if k < n && !f.Crashed() {
			t.Fatalf("crash at %d: Crashed() = false", k)
		}
		m.Crash()
		_ = m.RemoveAll("/d/x")
		_ = m.SyncDir("/d")
	}
}
