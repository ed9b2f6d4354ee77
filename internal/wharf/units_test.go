package wharf

import "testing"

func TestFormatRateReadsBackAsGiven(t *testing.T) {
	for in, want := range map[string]string{
		"5MB/s": "5MB/s", "20MiB/s": "20MiB/s", "1GB/s": "1GB/s", "2GiB/s": "2GiB/s",
		"512KiB/s": "512KiB/s", "300kB/s": "300kB/s", "1500B/s": "1500B/s", "1.5MB/s": "1500kB/s",
	} {
		n, err := ParseRate(in)
		if err != nil {
			t.Fatalf("ParseRate(%q): %v", in, err)
		}
		got := FormatRate(n)
		if got != want {
			t.Errorf("FormatRate(ParseRate(%q) = %d) = %q, want %q", in, n, got, want)
		}
		if back, err := ParseRate(got); err != nil || back != n {
			t.Errorf("ParseRate(FormatRate(%d) = %q) = %d, %v", n, got, back, err)
		}
	}
	if got := FormatRate(0); got != "unlimited" {
		t.Errorf("FormatRate(0) = %q", got)
	}
}

func TestPrerequisiteCheck(t *testing.T) {
	for flag, want := range map[string]string{
		"not-fixed-media": "fixed media", "unsupported-filesystem": "supported file system",
		"insufficient-space": "enough space", "known-folder": "not a known folder",
		"path-too-long": "path length", "invalid-target": "valid target",
		"success": "success", "nonsense": "nonsense",
	} {
		if got := PrerequisiteCheck(flag); got != want {
			t.Errorf("PrerequisiteCheck(%q) = %q, want %q", flag, got, want)
		}
	}
}
