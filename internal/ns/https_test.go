package ns_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/ns"
)

// TestSecureBehindATLSProxy: over plain HTTP the console's cookies are not
// Secure and no HSTS is sent; with BehindTLSProxy (a proxy terminates TLS)
// both are, on the console and the API.
func TestSecureBehindATLSProxy(t *testing.T) {
	for _, proxy := range []bool{false, true} {
		srv, err := ns.Open(t.Context(), ns.Config{DataDir: t.TempDir(), BehindTLSProxy: proxy}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		for _, path := range []string{"/login", "/api/v1/packages"} {
			resp, err := http.Get(hs.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Strict-Transport-Security") != ""; got != proxy {
				t.Errorf("behind a TLS proxy %v, %s: HSTS %q", proxy, path, resp.Header.Get("Strict-Transport-Security"))
			}
			for _, c := range resp.Header.Values("Set-Cookie") {
				if strings.Contains(c, "; Secure") != proxy {
					t.Errorf("behind a TLS proxy %v: cookie %q", proxy, c)
				}
			}
			if path == "/login" && len(resp.Header.Values("Set-Cookie")) == 0 {
				t.Errorf("the login page set no cookie")
			}
		}
		hs.Close()
		srv.Close()
	}
}
