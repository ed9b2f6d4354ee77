package wharf

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on a relative path inside a package. They keep every path storable
// on both Linux and Windows Package Servers.
const (
	MaxRelPathBytes   = 1024 // a whole relative path
	MaxComponentBytes = 255  // one path element
)

// ValidateRelPath reports whether p may name a file inside a package. A valid
// path is relative, uses '/' as its only separator, has no empty, "." or
// ".." elements, no element that Windows could not store or would alias
// (reserved device names, trailing dots or spaces, the characters <>:"|?*\),
// and no character CheckText refuses (control, format and bidirectional
// characters, invisible ones, spaces other than U+0020). The error names the
// path and the rule it broke.
func ValidateRelPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("invalid file path %q: %s", truncate(p, 200), why) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxRelPathBytes:
		return bad(fmt.Sprintf("longer than %d bytes", MaxRelPathBytes))
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case strings.IndexByte(p, 0) >= 0:
		return bad("contains a NUL byte")
	case strings.IndexByte(p, '\\') >= 0:
		return bad(`contains a backslash; use "/" between folders`)
	case strings.HasPrefix(p, "/"):
		return bad("absolute; want a path relative to the package")
	case len(p) >= 2 && p[1] == ':':
		return bad("has a drive letter; want a path relative to the package")
	}
	for _, elem := range strings.Split(p, "/") {
		if err := validateElem(elem); err != nil {
			return bad(err.Error())
		}
	}
	return nil
}

func validateElem(elem string) error {
	switch {
	case elem == "":
		return fmt.Errorf("empty path element")
	case elem == "." || elem == "..":
		return fmt.Errorf("%q element escapes or aliases the package", elem)
	case len(elem) > MaxComponentBytes:
		return fmt.Errorf("element longer than %d bytes", MaxComponentBytes)
	case strings.HasSuffix(elem, ".") || strings.HasSuffix(elem, " "):
		return fmt.Errorf("element %q ends in a dot or space, which Windows drops", elem)
	}
	for _, r := range elem {
		if !TextRuneAllowed(r) {
			return fmt.Errorf("%s %U is not allowed", runeKind(r), r)
		}
		if strings.ContainsRune(`<>:"|?*`, r) {
			return fmt.Errorf("character %q is not allowed", r)
		}
	}
	base := strings.ToUpper(elem)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	base = strings.TrimRight(base, " ")
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return fmt.Errorf("%q is a reserved device name on Windows", elem)
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) &&
		(base[3] >= '0' && base[3] <= '9') {
		return fmt.Errorf("%q is a reserved device name on Windows", elem)
	}
	return nil
}

// FoldPath returns the key under which two paths collide on a
// case-insensitive file system (NTFS; see FoldName).
func FoldPath(p string) string { return FoldName(p) }

// ValidateFileSet checks every path with ValidateRelPath and then the set as
// a whole: no duplicates, no two entries that NTFS would take for one (two
// files, or two folders, whose names differ only in case: FoldPath), and no
// path that is both a file and a folder of another file ("a" and "a/b").
func ValidateFileSet(paths []string) error {
	seen := make(map[string]string, len(paths))
	for _, p := range paths {
		if err := ValidateRelPath(p); err != nil {
			return err
		}
		k := FoldPath(p)
		if prev, ok := seen[k]; ok {
			if prev == p {
				return fmt.Errorf("invalid file path %q: listed twice", truncate(p, 200))
			}
			return fmt.Errorf("invalid file path %q: collides with %q on a case-insensitive file system", truncate(p, 200), truncate(prev, 200))
		}
		seen[k] = p
	}
	folders := map[string]string{} // folded folder path → the folder as first written
	for _, p := range paths {
		k := FoldPath(p)
		for i := strings.LastIndexByte(k, '/'); i > 0; i = strings.LastIndexByte(k[:i], '/') {
			if prev, ok := seen[k[:i]]; ok {
				return fmt.Errorf("invalid file path %q: %q is a file, not a folder", truncate(p, 200), truncate(prev, 200))
			}
		}
		// The same folder written two ways ("Docs/a", "docs/b") is two
		// folders on Linux and one on NTFS: refused, so a package has one
		// layout everywhere.
		for i := strings.IndexByte(p, '/'); i > 0; {
			dir := p[:i]
			fk := FoldPath(dir)
			if prev, ok := folders[fk]; ok && prev != dir {
				return fmt.Errorf("invalid file path %q: folder %q collides with %q on a case-insensitive file system", truncate(p, 200), truncate(dir, 200), truncate(prev, 200))
			}
			folders[fk] = dir
			j := strings.IndexByte(p[i+1:], '/')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	return nil
}
