package client

import (
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
