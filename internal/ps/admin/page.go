package admin

import (
	"context"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/wharf"
)

//go:embed page/status.html
var statusPageHTML string

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"size": wharf.FormatSize, // binary units, as everywhere else
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"join": strings.Join,
	"percent": func(done, total int64) int64 {
		if total <= 0 {
			return 0
		}
		return done * 100 / total
	},
}).Parse(statusPageHTML))

// pagePackages is how many packages the status page lists.
const pagePackages = 200

// pageData is what the status page shows.
type pageData struct {
	Status
	Notice    string
	CanRetry  bool
	Generated time.Time
}

// registerPage adds the status page (GET /) and its retry form (POST
// /ui/retry-relocation) to mux. The page shows the same storage facts as
// `wharf ps status`; `wharf ps console` makes it reachable from a browser.
func registerPage(mux *http.ServeMux, b Backend, log *slog.Logger) {
	rb, canRetry := b.(Relocator)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Status(r.Context(), pagePackages)
		if err != nil {
			log.Error("status page", "err", err)
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		d := pageData{Status: st, CanRetry: canRetry, Generated: time.Now()}
		switch r.URL.Query().Get("notice") {
		case "retry":
			d.Notice = "A manual relocation retry was queued."
		case "retry-failed":
			d.Notice = "The retry could not be queued; see the Package Server's log."
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		if err := statusPage.Execute(w, d); err != nil {
			log.Error("status page", "err", err)
		}
	})
	if canRetry {
		mux.HandleFunc("POST /ui/retry-relocation", func(w http.ResponseWriter, r *http.Request) {
			notice := "retry"
			if err := rb.RetryRelocation(context.WithoutCancel(r.Context())); err != nil {
				log.Error("manual relocation retry from the status page", "err", err)
				notice = "retry-failed"
			} else {
				log.Info("manual relocation retry asked for from the status page")
			}
			http.Redirect(w, r, "/?notice="+notice, http.StatusSeeOther)
		})
	}
}
