package wharf

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text that names things on disk or on screen — a file path inside a
// package, a storage location, a package name — must read as what it is.
// CheckText refuses what could make two names look alike or make a name
// look like something else: invalid UTF-8, control characters (C0, DEL,
// C1 such as U+0085), format characters (bidirectional overrides and
// isolates such as U+202E, zero-width spaces and joiners, the BOM, soft
// hyphens), line and paragraph separators, spaces other than U+0020 (no-break,
// ideographic, ...), characters Unicode says to ignore when displaying
// (U+034F, U+115F, U+3164, ...), variation selectors, private-use,
// unassigned and non-characters, and U+FFFD, the mark of bytes that were
// not text.

// TextRuneAllowed reports whether r may appear in a name or path.
func TextRuneAllowed(r rune) bool {
	if r == ' ' {
		return true
	}
	return r != utf8.RuneError && unicode.IsGraphic(r) && !unicode.IsSpace(r) &&
		!unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) && !unicode.Is(unicode.Variation_Selector, r)
}

// CheckText returns nil when every character of s is allowed
// (TextRuneAllowed), and otherwise an error naming the first one that is
// not and why.
func CheckText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	for i, r := range s {
		if !TextRuneAllowed(r) {
			return fmt.Errorf("%s %U at byte %d is not allowed", runeKind(r), r, i)
		}
	}
	return nil
}

// CleanText returns s with every character CheckText refuses, and every
// byte that is not UTF-8, replaced by '?', cut to at most max bytes (0: no
// limit) at a character boundary. A Package Server cleans the free text it
// reports (error messages quoting paths of its own disks) with it, so the
// Notification Server, which refuses such text, never refuses a report.
func CleanText(s string, max int) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if !TextRuneAllowed(r) {
			r = '?'
		}
		if max > 0 && b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// runeKind says in words why r is refused.
func runeKind(r rune) string {
	switch {
	case r == utf8.RuneError:
		return "the replacement character"
	case unicode.Is(unicode.Cc, r):
		return "control character"
	case unicode.Is(unicode.Bidi_Control, r):
		return "bidirectional control"
	case unicode.Is(unicode.Cf, r):
		return "invisible format character"
	case unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
		return "line or paragraph separator"
	case unicode.IsSpace(r):
		return "space other than U+0020"
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Variation_Selector, r):
		return "invisible character"
	case unicode.Is(unicode.Noncharacter_Code_Point, r):
		return "non-character"
	case unicode.Is(unicode.Co, r):
		return "private-use character"
	}
	return "unassigned character"
}

// FoldName returns the key under which two names are the same entry of a
// folder on NTFS, and on the other case-insensitive file systems Package
// Servers and clients use: each character is replaced by the smallest
// character of its case-folding orbit (unicode.SimpleFold), so "a" and
// "A", and "k", "K" and the Kelvin sign U+212A, share a key. NTFS compares
// names through its upcase table, which maps characters one to one; this
// fold is the same or broader (it also joins the Kelvin sign with K), never
// narrower, so two names NTFS would take for one always collide here.
func FoldName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

func foldRune(r rune) rune {
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}
