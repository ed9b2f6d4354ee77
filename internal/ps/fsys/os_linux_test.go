package fsys_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/fsys/fsystest"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
)

// TestOSConformanceExt4 runs the suite on a loop-mounted ext4 volume, with
// the temp folder as the other volume and real chattr +i.
func TestOSConformanceExt4(t *testing.T) {
	loopfs.RequireRoot(t)
	vol := loopfs.Ext4(t, 32)
	fsystest.Run(t, func(t *testing.T) fsystest.Harness {
		dir, err := os.MkdirTemp(vol, "conformance-*")
		if err != nil {
			t.Fatal(err)
		}
		return fsystest.Harness{FS: fsys.OS{}, Dir: dir, Other: t.TempDir(), SetImmutable: fsys.SetImmutable}
	})
}

// TestCanRemoveAttributes checks what CanRemove reads from each entry's
// attributes on real file systems: on ext4 and XFS (statx reports them)
// an append-only file and an immutable folder are found; on FAT through
// FUSE, which has no such attributes, a tree can be removed.
func TestCanRemoveAttributes(t *testing.T) {
	loopfs.RequireRoot(t)
	for _, tc := range []struct {
		name string
		vol  func(t *testing.T) string
	}{
		{"ext4", func(t *testing.T) string { return loopfs.Ext4(t, 32) }},
		{"xfs", func(t *testing.T) string { return loopfs.XFS(t, 300) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol := tc.vol(t)
			tree := filepath.Join(vol, "pkg")
			sub := filepath.Join(tree, "sub")
			file := filepath.Join(sub, "f")
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				path, flag, reason string
			}{
				{file, "+a", "append-only"},
				{sub, "+i", "immutable"},
				{sub, "+a", "append-only"},
			} {
				if out, err := exec.Command("chattr", c.flag, c.path).CombinedOutput(); err != nil {
					t.Fatalf("chattr %s %s: %v %s", c.flag, c.path, err, out)
				}
				err := fsys.OS{}.CanRemove(tree)
				var re *fsys.RemovalError
				if !errors.As(err, &re) || re.Path != c.path || !strings.Contains(re.Reason, c.reason) {
					t.Errorf("chattr %s %s: CanRemove = %v, want %s named", c.flag, c.path, err, c.reason)
				}
				off := "-" + c.flag[1:]
				if out, err := exec.Command("chattr", off, c.path).CombinedOutput(); err != nil {
					t.Fatalf("chattr %s %s: %v %s", off, c.path, err, out)
				}
				if err := (fsys.OS{}).CanRemove(tree); err != nil {
					t.Errorf("after chattr %s %s: CanRemove = %v", off, c.path, err)
				}
			}
		})
	}
	t.Run("fat", func(t *testing.T) {
		vol := loopfs.FAT(t, 32)
		tree := filepath.Join(vol, "pkg", "sub")
		if err := os.MkdirAll(tree, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := (fsys.OS{}).CanRemove(filepath.Join(vol, "pkg")); err != nil {
			t.Errorf("CanRemove on FAT = %v", err)
		}
	})
}
