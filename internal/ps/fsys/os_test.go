//go:build !windows

// The Windows conformance runs are in os_windows_test.go.

package fsys_test

import (
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/fsys/fsystest"
)

func TestOSConformance(t *testing.T) {
	fsystest.Run(t, func(t *testing.T) fsystest.Harness {
		return fsystest.Harness{FS: fsys.OS{}, Dir: t.TempDir()}
	})
}
