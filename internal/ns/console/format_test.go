package console

import (
	"maps"
	"testing"
	"time"
)

func TestFieldErrors(t *testing.T) {
	for _, c := range []struct {
		msg      string
		byField  map[string]string
		leftOver string
	}{
		{`linux_location: "rel" is not an absolute Linux path`, map[string]string{"linux_location": `"rel" is not an absolute Linux path`}, ""},
		// A path holding "; field: " cuts its message short, but every
		// field still gets its own.
		{`linux_location: "a; windows_location: b" is not clean; windows_location: "x" is a network share`,
			map[string]string{"linux_location": `"a`, "windows_location": `"x" is a network share`}, ""},
		{"relocation_mode: \"up\", want online or exclusive", map[string]string{"relocation_mode": `"up", want online or exclusive`}, ""},
		{"name a server: the global policies cannot be removed", map[string]string{}, "name a server: the global policies cannot be removed"},
		{"something odd; linux_location: bad", map[string]string{"linux_location": "bad"}, "something odd"},
	} {
		got, rest := fieldErrors(c.msg, packageServerFields)
		if !maps.Equal(got, c.byField) || rest != c.leftOver {
			t.Errorf("fieldErrors(%q) = %q, %q; want %q, %q", c.msg, got, rest, c.byField, c.leftOver)
		}
	}
}

func TestParseRateRoundTrip(t *testing.T) {
	for _, n := range []int64{0, 1, 1000, 1024, 5e6, 20 << 20, 3 << 30, 1e9, 123457} {
		text := rateInput(n)
		got, err := parseRate(text)
		if err != nil || got != n {
			t.Errorf("parseRate(rateInput(%d) = %q) = %d, %v", n, text, got, err)
		}
	}
	for in, want := range map[string]int64{"unlimited": 0, "50MB/s": 50e6, "1.5 GiB/s": 3 << 29, "10kb/s": 10e3} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"fast", "10MB", "-1MB/s", "1e400MB/s", "/s"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q): no error", bad)
		}
	}
}

func TestFormats(t *testing.T) {
	for mb, want := range map[int64]string{0: "0 MiB", 900: "900 MiB", 1024: "1 GiB", 1536: "1.5 GiB", 301234: "294.2 GiB", 2 << 20: "2 TiB", -1: "—"} {
		if got := formatMB(mb); got != want {
			t.Errorf("formatMB(%d) = %q, want %q", mb, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 900: "900 B", 48 << 10: "48 KiB", 1<<20 + 1<<19: "1.5 MiB", 5 << 40: "5 TiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for d, want := range map[time.Duration]string{5 * time.Second: "5 s ago", 3 * time.Minute: "3 min ago", 5 * time.Hour: "5 h ago", 72 * time.Hour: "3 days ago"} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(%s) = %q, want %q", d, got, want)
		}
	}
	if got := ago(now, time.Time{}); got != "never" {
		t.Errorf("ago(zero) = %q", got)
	}
	words := statusWords(0x202)
	if len(words) != 2 || words[0].Name != "some-not-moved" || words[1].Text != "Automatic retries are exhausted" {
		t.Errorf("statusWords(0x202) = %+v", words)
	}
	if w := statusWords(0x1000); len(w) != 1 || w[0].Name != "0x1000" {
		t.Errorf("statusWords(0x1000) = %+v", w)
	}
}

func TestSafeNextUnit(t *testing.T) {
	for in, want := range map[string]string{"/a?b=c#d": "/a?b=c#d", "": "/", "a": "/", "/logout": "/", "/x\r\nSet-Cookie: y": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
