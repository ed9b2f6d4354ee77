package wharf

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRelPath: ValidateRelPath never accepts a path that could leave a
// package or alias another on some file system, and ValidateFileSet
// refuses every pair that NTFS would take for one entry.
func FuzzRelPath(f *testing.F) {
	for _, s := range []string{"a", "a/b/c.txt", "../x", "a/../b", "/abs", `a\b`, "C:x", "con.txt", "a\u202eb", "k/\u212a",
		"Docs/a", "ünïcode/файл", "a//b", "a/./b", "trailing.", "x\x00y", "a\u0085b", "\ufeffbom", strings.Repeat("x", 300)} {
		f.Add(s, strings.ToUpper(s))
	}
	f.Fuzz(func(t *testing.T, p, q string) {
		if err := ValidateRelPath(p); err == nil {
			switch {
			case !utf8.ValidString(p) || CheckText(p) != nil:
				t.Fatalf("accepted %q: not clean text", p)
			case strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00:<>\"|?*"):
				t.Fatalf("accepted %q: absolute or a character Windows refuses", p)
			case len(p) > MaxRelPathBytes:
				t.Fatalf("accepted %q: too long", p)
			}
			for _, e := range strings.Split(p, "/") {
				if e == "" || e == "." || e == ".." || len(e) > MaxComponentBytes || strings.HasSuffix(e, ".") || strings.HasSuffix(e, " ") {
					t.Fatalf("accepted %q: element %q", p, e)
				}
			}
			if err := ValidateFileSet([]string{p}); err != nil {
				t.Fatalf("%q alone: ValidateRelPath accepts it, ValidateFileSet says %v", p, err)
			}
		}
		if FoldName(FoldName(p)) != FoldName(p) {
			t.Fatalf("FoldName is not idempotent on %q", p)
		}
		if ValidateFileSet([]string{p, q}) == nil {
			if p == q || FoldPath(p) == FoldPath(q) {
				t.Fatalf("accepted %q and %q: the same entry on NTFS", p, q)
			}
			// No folder of one is the other written differently.
			for _, a := range [][2]string{{p, q}, {q, p}} {
				for i := strings.IndexByte(a[0], '/'); i > 0; i = nextSlash(a[0], i) {
					if FoldPath(a[0][:i]) == FoldPath(a[1]) {
						t.Fatalf("accepted %q and %q: a file is a folder of the other", p, q)
					}
				}
			}
		}
	})
}

func nextSlash(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
