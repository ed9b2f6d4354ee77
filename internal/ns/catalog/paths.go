package catalog

import (
	"fmt"
	"path"
	"strings"

	"github.com/wharf-project/wharf/internal/wharf"
)

// Limits on a storage path given by an administrator. The PS checks the
// real limits of its file system (SPEC §6.1.5); these only keep absurd
// values out.
const (
	maxLinuxPath   = 4095
	maxWindowsPath = 8184
)

// checkLinuxPath accepts an absolute, clean Linux path other than "/".
func checkLinuxPath(p string) error {
	if err := checkPathText(p, maxLinuxPath); err != nil {
		return err
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is not an absolute Linux path", p)
	case p == "/":
		return fmt.Errorf(`"/" cannot hold a package store`)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not clean (want %q)", p, path.Clean(p))
	}
	return nil
}

// checkWindowsPath accepts a drive-absolute Windows path (E:\Store) or its
// \\?\ form. Network shares are refused: a package store needs fixed media.
func checkWindowsPath(p string) error {
	if err := checkPathText(p, maxWindowsPath); err != nil {
		return err
	}
	rest := p
	if strings.HasPrefix(rest, `\\?\`) {
		rest = rest[4:]
		if strings.HasPrefix(strings.ToUpper(rest), `UNC\`) {
			return fmt.Errorf("%q is a network share; a package store needs a fixed drive", p)
		}
	} else if strings.HasPrefix(rest, `\\`) {
		return fmt.Errorf("%q is a network share; a package store needs a fixed drive", p)
	}
	if len(rest) < 3 || !isDriveLetter(rest[0]) || rest[1] != ':' || rest[2] != '\\' {
		return fmt.Errorf(`%q is not an absolute Windows path: want X:\folder`, p)
	}
	if len(rest) == 3 {
		return nil // a drive root
	}
	for _, elem := range strings.Split(rest[3:], `\`) {
		switch {
		case elem == "":
			return fmt.Errorf(`%q has an empty element (a doubled or trailing \)`, p)
		case elem == "." || elem == "..":
			return fmt.Errorf("%q has a %q element", p, elem)
		case strings.ContainsAny(elem, `<>:"/|?*`):
			return fmt.Errorf(`%q has a character Windows does not allow in %q`, p, elem)
		case strings.HasSuffix(elem, ".") || strings.HasSuffix(elem, " "):
			return fmt.Errorf("%q: element %q ends in a dot or space", p, elem)
		}
	}
	return nil
}

func checkPathText(p string, max int) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case len(p) > max:
		return fmt.Errorf("path longer than %d bytes", max)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("path contains a NUL byte")
	}
	if err := wharf.CheckText(p); err != nil {
		return fmt.Errorf("path %+q: %v", p, err)
	}
	return nil
}

func isDriveLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
