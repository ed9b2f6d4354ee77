package wharf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

var units = []struct {
	suffix string
	mult   float64
}{
	// Longest first, so "KiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseSize reads a size: a number and a unit, B, kB, MB, GB, TB (powers of
// 1000) or KiB, MiB, GiB, TiB (powers of 1024); a bare number is bytes.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q: want a number and a unit such as 500MB or 2GiB", s)
	}
	return int64(v * mult), nil
}

// FormatSize prints bytes with a binary unit and at most one decimal.
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size {
			s := strconv.FormatFloat(float64(n)/float64(u.size), 'f', 1, 64)
			return strings.TrimSuffix(s, ".0") + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// ParseRate reads a rate such as "200MB/s" into bytes per second.
func ParseRate(s string) (int64, error) {
	t, ok := strings.CutSuffix(strings.TrimSpace(s), "/s")
	if !ok {
		return 0, fmt.Errorf("invalid rate %q: want a size per second such as 200MB/s", s)
	}
	n, err := ParseSize(t)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid rate %q: want a size per second such as 200MB/s", s)
	}
	return n, nil
}

// ParseBandwidth reads a bandwidth limit: a rate such as 50MB/s, or "0",
// "none" or "unlimited" for no limit (0).
func ParseBandwidth(s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "0", "none", "unlimited":
		return 0, nil
	}
	n, err := ParseRate(s)
	if err != nil {
		return 0, fmt.Errorf("%v, or 0 for no limit", err)
	}
	return n, nil
}

// FormatRate prints a rate in bytes per second in the unit it was most
// likely given in, so that ParseRate reads it back exactly: 5000000 is
// "5MB/s", 5242880 "5MiB/s" (binary units first when both fit, as a power
// of 1024 is rarely a round power of 1000), 0 or less "unlimited".
func FormatRate(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	for _, u := range []struct {
		name string
		size int64
	}{
		{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6},
		{"KiB", 1 << 10}, {"kB", 1e3},
	} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name + "/s"
		}
	}
	return strconv.FormatInt(n, 10) + "B/s"
}
