package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPSStatusPage runs `wharf ps console` against a real PS and reads its
// status page as a browser would: through the printed URL only.
func TestPSStatusPage(t *testing.T) {
	dir := t.TempDir()
	_, _, env := startNS(t, filepath.Join(dir, "ns"), "")
	psDir := filepath.Join(dir, "ps")
	startPS(t, env, "ps-lyon", psDir)
	_, url := start(t, regexp.MustCompile(`status page: (http://\S+)`), nil, "ps", "console", "--install-dir", psDir)

	if resp, err := http.Get(strings.Split(url, "?")[0]); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the page without the token: %v %v, want 403", resp, err)
	}
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"Wharf Package Server ps-lyon", filepath.Join(psDir, "Package Delivery"), "Retry relocation"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("status page lacks %q:\n%s", want, page)
		}
	}
	if r := run(t, nil, "ps", "console", "--install-dir", psDir, "--addr", "0.0.0.0:0"); r.code != 2 || !strings.Contains(r.stderr, "loopback") {
		t.Errorf("a non-loopback address: exit %d, %q", r.code, r.stderr)
	}
}
