package fsys_test

import (
	"os"
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
