package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Catalog is what the client needs of the Notification Server's admin API.
// *apiclient.Client implements it. Errors for a missing package wrap
// wharf.ErrNotFound.
type Catalog interface {
	// ListPackages lists the packages with the given name and, when version
	// is not empty, that version.
	ListPackages(ctx context.Context, name, version string) ([]api.PackageSummary, error)
	// Package returns a package with its files.
	Package(ctx context.Context, id string) (api.Package, error)
	// Codebases lists the Package Servers that serve the package, in the
	// order they should be tried.
	Codebases(ctx context.Context, id string) (api.Codebases, error)
}

var _ Catalog = (*apiclient.Client)(nil)

// ParseSpec splits PACKAGE[@VERSION] at its last '@'. version is empty when
// spec has none; a spec that ends in '@' or names no package is invalid.
func ParseSpec(spec string) (name, version string, err error) {
	if spec == "" {
		return "", "", fmt.Errorf("invalid package %q: empty: %w", spec, wharf.ErrInvalid)
	}
	i := strings.LastIndexByte(spec, '@')
	if i <= 0 {
		return spec, "", nil
	}
	name, version = spec[:i], spec[i+1:]
	if version == "" {
		return "", "", fmt.Errorf("invalid package %q: empty version after '@': %w", spec, wharf.ErrInvalid)
	}
	return name, version, nil
}

// Resolve finds the package spec names (see the package documentation) and
// returns it with its files. An unknown package or version is an error
// wrapping wharf.ErrNotFound.
func Resolve(ctx context.Context, cat Catalog, spec string) (api.Package, error) {
	if id, err := wharf.ParsePackageID(spec); err == nil {
		p, err := cat.Package(ctx, string(id))
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, wharf.ErrNotFound) {
			return api.Package{}, fmt.Errorf("look up package %s: %w", spec, err)
		}
		// Not an id after all: try it as a name below.
	}
	name, version, err := ParseSpec(spec)
	if err != nil {
		return api.Package{}, err
	}
	list, err := find(ctx, cat, name, version)
	if err == nil && len(list) == 0 && version != "" {
		// A name may contain '@': try the whole spec as a name.
		list, err = find(ctx, cat, spec, "")
	}
	if err != nil {
		return api.Package{}, fmt.Errorf("look up package %s: %w", spec, err)
	}
	if len(list) == 0 {
		if version != "" {
			if others, err := cat.ListPackages(ctx, name, ""); err == nil && len(others) > 0 {
				var have []string
				for _, o := range others {
					if o.Name == name {
						have = append(have, o.Version)
					}
				}
				if len(have) > 0 {
					slices.Sort(have)
					return api.Package{}, fmt.Errorf("package %q has no version %q (it has %s): %w",
						name, version, strings.Join(have, ", "), wharf.ErrNotFound)
				}
			}
		}
		return api.Package{}, fmt.Errorf("package %s: %w", spec, wharf.ErrNotFound)
	}
	newest := slices.MaxFunc(list, func(a, b api.PackageSummary) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	p, err := cat.Package(ctx, newest.ID)
	if err != nil {
		return api.Package{}, fmt.Errorf("get package %s (%s): %w", spec, newest.ID, err)
	}
	return p, nil
}

// find lists the packages called name (of that version, when not empty).
func find(ctx context.Context, cat Catalog, name, version string) ([]api.PackageSummary, error) {
	list, err := cat.ListPackages(ctx, name, version)
	return slices.DeleteFunc(list, func(s api.PackageSummary) bool {
		return s.Name != name || version != "" && s.Version != version
	}), err
}
