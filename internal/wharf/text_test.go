package wharf

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckText(t *testing.T) {
	good := []string{"", "plain", "with space", "ünïcode/файл", "日本語", "e\u0301", "a-b_c.d", "emoji 📦"}
	for _, s := range good {
		if err := CheckText(s); err != nil {
			t.Errorf("CheckText(%q) = %v, want nil", s, err)
		}
	}
	bad := map[string]string{
		"a\u202eb":    "bidirectional control",
		"a\u2066b":    "bidirectional control",
		"a\u200fb":    "bidirectional control",
		"a\u0085b":    "control character",
		"a\x1bb":      "control character",
		"a\x7fb":      "control character",
		"a\u200bb":    "invisible format character",
		"a\u200db":    "invisible format character",
		"\ufeffa":     "invisible format character",
		"a\u00adb":    "invisible format character",
		"a\u2028b":    "line or paragraph separator",
		"a\u00a0b":    "space other than U+0020",
		"a\u3000b":    "space other than U+0020",
		"a\tb":        "control character",
		"a\u3164b":    "invisible character",
		"a\u034fb":    "invisible character",
		"a\ufe0fb":    "invisible character",
		"a\ufffeb":    "non-character",
		"a\ue000b":    "private-use character",
		"a\ufffdb":    "the replacement character",
		"a\U000e0001": "invisible format character",
		"\xff\xfe":    "not valid UTF-8",
	}
	for s, why := range bad {
		err := CheckText(s)
		if err == nil {
			t.Errorf("CheckText(%q) = nil, want an error", s)
			continue
		}
		if !strings.Contains(err.Error(), why) {
			t.Errorf("CheckText(%q) = %q, want it to say %q", s, err, why)
		}
	}
}

func TestCleanText(t *testing.T) {
	cases := map[string]string{
		"ok":              "ok",
		"a\u202eb\tc":     "a?b?c",
		"bad \xff bytes":  "bad ? bytes",
		"x\u200by\u00a0z": "x?y?z",
	}
	for in, want := range cases {
		if got := CleanText(in, 0); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
		if err := CheckText(CleanText(in, 0)); err != nil {
			t.Errorf("CleanText(%q) is refused: %v", in, err)
		}
	}
	if got := CleanText("ééé", 5); got != "éé" || !utf8.ValidString(got) {
		t.Errorf("CleanText cut to 5 bytes = %q, want %q", got, "éé")
	}
}

func TestFoldName(t *testing.T) {
	same := [][2]string{{"Read.me", "READ.ME"}, {"k", "\u212a"}, {"straße", "STRAßE"}, {"ΣΑΣ", "σας"}, {"Ǆ", "ǆ"}}
	for _, p := range same {
		if FoldName(p[0]) != FoldName(p[1]) {
			t.Errorf("FoldName(%q) = %q, FoldName(%q) = %q: want equal", p[0], FoldName(p[0]), p[1], FoldName(p[1]))
		}
	}
	differ := [][2]string{{"a", "b"}, {"é", "e\u0301"}, {"ß", "ss"}}
	for _, p := range differ {
		if FoldName(p[0]) == FoldName(p[1]) {
			t.Errorf("FoldName(%q) == FoldName(%q): want different (NTFS keeps them apart)", p[0], p[1])
		}
	}
}
