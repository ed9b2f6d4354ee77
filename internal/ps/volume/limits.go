package volume

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf16"

	"github.com/wharf-project/wharf/internal/wharf"
)

// ErrPathTooLong is matched (errors.Is) by every [PathLengthError].
var ErrPathTooLong = errors.New("path too long")

// Limits are the path-length limits of one OS (SPEC §6.1.5). The zero value
// limits nothing; use [LimitsFor] or [DefaultLimits].
type Limits struct {
	// MaxPath bounds a whole path: bytes, or UTF-16 code units when UTF16
	// is set.
	MaxPath int
	// MaxComponent bounds each path element the same way; 0 means no
	// bound of its own.
	MaxComponent int
	// UTF16 counts UTF-16 code units (Windows "characters") instead of
	// bytes.
	UTF16 bool
	// Windows makes `\` the separator (and `/` an accepted one) when
	// joining and splitting paths; otherwise `/` is.
	Windows bool
}

// LimitsFor returns the limits of OS goos (as runtime.GOOS): Windows 8184
// characters for a whole path; Linux (and any other OS) 4095 bytes for a
// whole path and 255 bytes for each element.
func LimitsFor(goos string) Limits {
	if goos == "windows" {
		return Limits{MaxPath: 8184, UTF16: true, Windows: true}
	}
	return Limits{MaxPath: 4095, MaxComponent: 255}
}

// DefaultLimits returns the limits of the running OS.
func DefaultLimits() Limits { return LimitsFor(runtime.GOOS) }

// CheckPathLength checks target joined with longestRel against the limits of
// the running OS; see [Limits.Check].
func CheckPathLength(target, longestRel string) error {
	return DefaultLimits().Check(target, longestRel)
}

// Join joins target and rel (a '/'-separated path relative to target, as in
// a package manifest) with the OS separator, the way files will be named on
// disk. An empty rel yields target.
func (l Limits) Join(target, rel string) string {
	if rel == "" {
		return target
	}
	sep := "/"
	if l.Windows {
		sep = `\`
		rel = strings.ReplaceAll(rel, "/", `\`)
	}
	if strings.HasSuffix(target, sep) || (l.Windows && strings.HasSuffix(target, "/")) {
		return target + rel
	}
	return target + sep + rel
}

// Len is the length of p as the limits count it.
func (l Limits) Len(p string) int {
	if l.UTF16 {
		n := 0
		for _, r := range p {
			n += utf16.RuneLen(r)
		}
		return n
	}
	return len(p)
}

// Check reports whether the longest path the store would hold — target
// joined with longestRel, the longest relative path inside any package
// (including the package's own folder, if the store adds one) — fits the
// limits. It returns nil or a *[PathLengthError].
func (l Limits) Check(target, longestRel string) error {
	full := l.Join(target, longestRel)
	if l.MaxPath > 0 {
		if n := l.Len(full); n > l.MaxPath {
			return &PathLengthError{Path: full, Len: n, Max: l.MaxPath, Unit: l.unit()}
		}
	}
	if l.MaxComponent > 0 {
		split := func(r rune) bool { return r == '/' || (l.Windows && r == '\\') }
		for _, elem := range strings.FieldsFunc(full, split) {
			if n := l.Len(elem); n > l.MaxComponent {
				return &PathLengthError{Path: full, Component: elem, Len: n, Max: l.MaxComponent, Unit: l.unit()}
			}
		}
	}
	return nil
}

func (l Limits) unit() string {
	if l.UTF16 {
		return "characters"
	}
	return "bytes"
}

// PathLengthError says which path, or which element of it, is too long.
// It matches [ErrPathTooLong] and wharf.ErrInvalid.
type PathLengthError struct {
	Path      string // the whole joined path
	Component string // the element too long, or "" when the whole path is
	Len, Max  int    // its length and the limit, in Unit
	Unit      string // "bytes" or "characters"
}

func (e *PathLengthError) Error() string {
	if e.Component != "" {
		return fmt.Sprintf("path %s: element %s is %d %s, limit %d", short(e.Path), short(e.Component), e.Len, e.Unit, e.Max)
	}
	return fmt.Sprintf("path %s is %d %s, limit %d", short(e.Path), e.Len, e.Unit, e.Max)
}

// Unwrap makes the error match ErrPathTooLong and wharf.ErrInvalid.
func (e *PathLengthError) Unwrap() []error { return []error{ErrPathTooLong, wharf.ErrInvalid} }

// short keeps error messages readable when the path is thousands of bytes.
func short(p string) string {
	if len(p) <= 120 {
		return p
	}
	return strings.ToValidUTF8(p[:60], "") + "..." + strings.ToValidUTF8(p[len(p)-57:], "")
}
