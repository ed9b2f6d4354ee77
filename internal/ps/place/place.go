// Package place decides which store root a new package goes to. The only
// placement today is Primary: a package's custom location when it has one,
// else the primary location. Rotation onto other fixed volumes will add a
// placer that looks at free space; the downloader only sees the Placer
// interface it declares, so it does not change.
//
// A package with a custom location C is stored at C/<package id>/, with C
// used as a store root of its own (marker, temp and trash folders inside C),
// so several custom-location packages may share one custom location and the
// crash-safety rules are the same everywhere.
package place

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Primary places every package in Dir (the primary location), except
// packages with a custom location, which go there.
type Primary struct {
	Dir string
}

// Place returns the store root for pkg. A custom location that is not an
// absolute path on this PS's OS is refused with an error wrapping
// wharf.ErrInvalid.
func (p Primary) Place(_ context.Context, pkg api.PackageSummary) (string, error) {
	if pkg.CustomLocation == "" {
		return p.Dir, nil
	}
	c := pkg.CustomLocation
	if !filepath.IsAbs(c) || strings.IndexByte(c, 0) >= 0 {
		return "", fmt.Errorf("custom location %q of package %s is not an absolute path on %s: %w",
			c, pkg.ID, runtime.GOOS, wharf.ErrInvalid)
	}
	return filepath.Clean(c), nil
}
