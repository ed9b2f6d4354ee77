package catalog

import (
	"fmt"
	"sort"
	"strings"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Limits on a manifest.
const (
	MaxNameLen        = 128
	MaxVersionLen     = 64
	MaxFiles          = 200_000
	MaxCustomLocation = 1024
	MaxServers        = 10_000
)

// checkManifest validates a manifest and returns the package it describes
// (without id and creation time). Every error wraps wharf.ErrInvalid and
// names the offending field or path.
func checkManifest(m api.PackageManifest) (Package, error) {
	invalid := func(format string, args ...any) (Package, error) {
		return Package{}, wharf.Errorf(wharf.ErrInvalid, format, args...)
	}
	if err := checkLabel("name", m.Name, MaxNameLen); err != nil {
		return invalid("%v", err)
	}
	if err := checkLabel("version", m.Version, MaxVersionLen); err != nil {
		return invalid("%v", err)
	}
	if len(m.Files) == 0 {
		return invalid("files: a package needs at least one file")
	}
	if len(m.Files) > MaxFiles {
		return invalid("files: %d files, at most %d allowed", len(m.Files), MaxFiles)
	}
	if m.Public && m.Signed {
		return invalid("public and signed: a package is one or the other (signed when not public)")
	}
	p := Package{Name: m.Name, Version: m.Version, Signed: !m.Public, FileCount: len(m.Files)}
	paths := make([]string, len(m.Files))
	p.Files = make([]wharf.File, len(m.Files))
	for i, f := range m.Files {
		paths[i] = f.Path
		if err := wharf.ValidateRelPath(f.Path); err != nil {
			return invalid("files[%d]: %v", i, err)
		}
		if f.Size < 0 {
			return invalid("files[%d] %q: negative size", i, f.Path)
		}
		file, err := fileFromWire(f)
		if err != nil {
			return invalid("files[%d] %q: %v", i, f.Path, err)
		}
		p.Files[i] = file
		p.Size += f.Size
	}
	if err := wharf.ValidateFileSet(paths); err != nil {
		return invalid("files: %v", err)
	}
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Path < p.Files[j].Path })

	a := m.Assignment
	switch {
	case a.All && len(a.Servers) > 0:
		return invalid("assignment: give either all or a list of servers, not both")
	case !a.All && len(a.Servers) == 0:
		return invalid("assignment: give all or a list of servers")
	case len(a.Servers) > MaxServers:
		return invalid("assignment: more than %d servers", MaxServers)
	}
	p.AssignAll = a.All
	seen := map[wharf.ServerName]bool{}
	for _, s := range a.Servers {
		n, err := wharf.ParseServerName(s)
		if err != nil {
			return invalid("assignment: %v", err)
		}
		if !seen[n] {
			seen[n] = true
			p.Servers = append(p.Servers, n)
		}
	}
	sort.Slice(p.Servers, func(i, j int) bool { return p.Servers[i] < p.Servers[j] })

	if m.CustomLocation != "" {
		if err := checkCustomLocation(m.CustomLocation); err != nil {
			return invalid("custom_location: %v", err)
		}
		p.CustomLocation = m.CustomLocation
	}
	return p, nil
}

// checkLabel accepts a name or version: printable, no slashes, no leading
// or trailing space.
func checkLabel(field, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%s: empty", field)
	case len(s) > max:
		return fmt.Errorf("%s: longer than %d bytes", field, max)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%s %q: leading or trailing space", field, s)
	case strings.ContainsAny(s, `/\@`):
		return fmt.Errorf(`%s %q: '/', '\' and '@' are not allowed`, field, s)
	}
	if err := wharf.CheckText(s); err != nil {
		return fmt.Errorf("%s %+q: %v", field, s, err)
	}
	return nil
}

// checkCustomLocation accepts an absolute path in Linux syntax (/srv/pkgs)
// or Windows syntax (E:\pkgs): the package may go to servers of either OS,
// and each PS checks the location against its own disks.
func checkCustomLocation(loc string) error {
	if strings.HasPrefix(loc, "/") {
		return checkLinuxPath(loc)
	}
	return checkWindowsPath(loc)
}

// sameContent reports whether a stored package and a new one describe the
// same files, assignment and options.
func sameContent(a, b Package) bool {
	if a.AssignAll != b.AssignAll || a.CustomLocation != b.CustomLocation || a.Signed != b.Signed ||
		len(a.Files) != len(b.Files) || len(a.Servers) != len(b.Servers) {
		return false
	}
	for i := range a.Files {
		if a.Files[i] != b.Files[i] {
			return false
		}
	}
	for i := range a.Servers {
		if a.Servers[i] != b.Servers[i] {
			return false
		}
	}
	return true
}
