package admin

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// ConsoleCookie is the cookie a browser of `wharf ps console` keeps its
// one-time token in.
const ConsoleCookie = "wharf_ps_console"

// ConsoleProxy serves the admin endpoint's status page (and its retry
// form) to a browser on a loopback TCP port. The Unix socket, readable by
// the PS's own user only, stays the one way in: the proxy runs as a user
// who can open it, and admits only a browser that opened the URL carrying
// token (it then keeps it in an HttpOnly, SameSite=Strict cookie). A form
// post must come from the proxy's own origin. Only the page, its form and
// the JSON status are passed on.
func ConsoleProxy(socketPath, token string) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "wharf-ps-admin"
			r.Out.Host = "wharf-ps-admin"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx, socketPath, 0)
		}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := r.URL.Query().Get("token"); t != "" {
			if subtle.ConstantTimeCompare([]byte(t), []byte(token)) != 1 {
				http.Error(w, "wrong token: open the URL that `wharf ps console` printed", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: ConsoleCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		c, err := r.Cookie(ConsoleCookie)
		if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(token)) != 1 {
			http.Error(w, "not admitted: open the URL that `wharf ps console` printed", http.StatusForbidden)
			return
		}
		switch {
		case r.Method == http.MethodGet && (r.URL.Path == "/" || r.URL.Path == "/status"):
		case r.Method == http.MethodPost && r.URL.Path == "/ui/retry-relocation":
			if !sameOrigin(r) {
				http.Error(w, "cross-origin form post refused", http.StatusForbidden)
				return
			}
		default:
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether a browser request comes from the page's own
// origin (or from no browser page at all).
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}
