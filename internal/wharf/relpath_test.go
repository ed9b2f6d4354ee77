package wharf

import (
	"strings"
	"testing"
)

func TestValidateRelPath(t *testing.T) {
	good := []string{"a", "a/b/c.txt", "bin/app.exe", "ünïcode/файл", "a.b.c", "com10", "lpt", "con-fig", strings.Repeat("x", 255)}
	for _, p := range good {
		if err := ValidateRelPath(p); err != nil {
			t.Errorf("ValidateRelPath(%q) = %v, want nil", p, err)
		}
	}
	bad := []string{
		"", "/abs", "../x", "a/../../b", "a/..", "./a", "a/./b", "a//b", "a/", `C:\x`, "C:x", `a\..\..\b`, `a\b`,
		"a\x00b", "a\x01", "x:y", "a|b", "a?", "a*", `a"b`, "<a>", "CON", "con.txt", "dir/NUL", "Aux.tar.gz",
		"COM1", "lpt9.log", "trailing.", "trailing ", strings.Repeat("x", 256), strings.Repeat("a/", 600) + "b",
		"\xff\xfe", "evil\u202etxt.exe", "a/b\u0085c", "zero\u200bwidth", "bom\ufeff", "nb\u00a0sp", "sep\u2028x", "x\ufffd",
	}
	for _, p := range bad {
		if err := ValidateRelPath(p); err == nil {
			t.Errorf("ValidateRelPath(%q) = nil, want an error", p)
		} else if !strings.Contains(err.Error(), "invalid file path") {
			t.Errorf("ValidateRelPath(%q) error %q does not say what it checked", p, err)
		}
	}
}

func TestValidateFileSet(t *testing.T) {
	cases := []struct {
		paths []string
		ok    bool
	}{
		{[]string{"a", "b", "c/d"}, true},
		{[]string{"a/b", "a/c"}, true},
		{[]string{"a", "a"}, false},
		{[]string{"Read.me", "READ.ME"}, false},
		{[]string{"a", "a/b"}, false},
		{[]string{"A/b", "a"}, false},
		{[]string{"ab", "a/b"}, true},
		{[]string{"kelvin", "\u212aelvin"}, false},
		{[]string{"dir/file", "DIR/x", "Dir/File"}, false},
		{[]string{"Σ/a", "σ/b"}, false},
		{[]string{"Docs/a", "docs/b"}, false},
		{[]string{"docs/a", "docs/b", "docs/sub/c"}, true},
		{[]string{"a/B/x", "a/b/y"}, false},
		{[]string{"Σ", "σ/b"}, false},
	}
	for _, c := range cases {
		err := ValidateFileSet(c.paths)
		if (err == nil) != c.ok {
			t.Errorf("ValidateFileSet(%q) = %v, want ok=%v", c.paths, err, c.ok)
		}
	}
}

func TestIDs(t *testing.T) {
	id := NewPackageID()
	if _, err := ParsePackageID(string(id)); err != nil {
		t.Fatalf("NewPackageID gave %q, which does not parse: %v", id, err)
	}
	if id == NewPackageID() {
		t.Fatal("two package ids are equal")
	}
	for _, s := range []string{"", "6F1C2A4E-0B1D-4C3E-9F00-0123456789AB", "../../etc/passwd", "6f1c2a4e00b1d-4c3e-9f00-0123456789ab"} {
		if _, err := ParsePackageID(s); err == nil {
			t.Errorf("ParsePackageID(%q) accepted", s)
		}
	}
	if _, err := ParseDigest(strings.Repeat("a", 64)); err != nil {
		t.Error(err)
	}
	for _, s := range []string{"", strings.Repeat("A", 64), strings.Repeat("a", 63), strings.Repeat("g", 64)} {
		if _, err := ParseDigest(s); err == nil {
			t.Errorf("ParseDigest(%q) accepted", s)
		}
	}
	if n, err := ParseServerName("PS-Paris.01"); err != nil || n != "ps-paris.01" {
		t.Errorf("ParseServerName: %q %v", n, err)
	}
	for _, s := range []string{"", "-a", "a/b", "a b", strings.Repeat("a", 64), "..", "ps\x00"} {
		if _, err := ParseServerName(s); err == nil {
			t.Errorf("ParseServerName(%q) accepted", s)
		}
	}
}
