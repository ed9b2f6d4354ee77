package client

import (
	"strconv"
	"testing"

	"github.com/wharf-project/wharf/internal/api"
)

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in                string
		first, last, size int64
		ok                bool
	}{
		{"bytes 10-99/100", 10, 99, 100, true},
		{"bytes 0-0/*", 0, 0, -1, true},
		{"bytes 10-99", 0, 0, 0, false},
		{"bytes */100", 0, 0, 0, false},
		{"bytes 9-3/100", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		first, last, size, ok := parseContentRange(tc.in)
		if first != tc.first || last != tc.last || size != tc.size || ok != tc.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v; want %d, %d, %d, %v",
				tc.in, first, last, size, ok, tc.first, tc.last, tc.size, tc.ok)
		}
	}
}

func TestFileURL(t *testing.T) {
	c, err := newCodebase(apiCodebase("http://ps1:8081/packages/abc", "exp=1&sig=ff"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.fileURL("with space/a#b%c?/ü.txt")
	want := "http://ps1:8081/packages/abc/with%20space/a%23b%25c%3F/%C3%BC.txt?exp=1&sig=ff"
	if got != want {
		t.Errorf("fileURL = %q, want %q", got, want)
	}
	if _, err := newCodebase(apiCodebase("ftp://x/", "")); err == nil {
		t.Error("an ftp codebase was accepted")
	}
}

func apiCodebase(u, q string) api.Codebase { return api.Codebase{Server: "ps1", URL: u, Query: q} }

// FuzzContentRange: parseContentRange accepts only "bytes FIRST-LAST/SIZE"
// (or "/*") written the one way, with FIRST <= LAST < SIZE: what it
// accepts formats back to the header it read.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 10-99/100", "bytes 0-0/*", "bytes 10-99", "bytes */100", "bytes 9-3/100", "items 0-1/2", "",
		"bytes +1-2/3", "bytes 0-5/5", "bytes 01-2/3", "bytes -1-2/3", "bytes 0-9223372036854775807/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, size, ok := parseContentRange(s)
		if !ok {
			return
		}
		total := "*"
		if size >= 0 {
			total = strconv.FormatInt(size, 10)
		}
		if back := "bytes " + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10) + "/" + total; back != s {
			t.Fatalf("accepted %q as %d-%d/%d, which reads %q", s, first, last, size, back)
		}
		if first < 0 || last < first || size >= 0 && last >= size {
			t.Fatalf("accepted %q: %d-%d/%d", s, first, last, size)
		}
	})
}
