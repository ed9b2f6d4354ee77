// Package admin is the Package Server's local admin endpoint: HTTP over a
// Unix socket at <install dir>/admin.sock (mode 0600, so only the PS's own
// user and root reach it), or on Windows over a named pipe that only
// SYSTEM, the Administrators and the PS's own account may open (SocketPath
// names it). The `wharf ps status` and `wharf ps update-config` commands use
// Client.
//
// Routes:
//
//	GET  /status            Status as JSON
//	POST /update-config     poll the NS now and apply its answer; 204 when done
//	POST /retry-relocation  a manual relocation retry; 202 once queued
//	GET  /plan?path=PATH    the relocation plan of PATH (relocate.Plan), moving nothing
//	GET  /metrics           Prometheus metrics of the PS (text exposition format)
//
// The metrics are served here, not on the package port, so they are only
// reachable by who may reach the socket and never collide with /packages/.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/httpguard"
	"github.com/wharf-project/wharf/internal/ps/location"
	"github.com/wharf-project/wharf/internal/ps/relocate"
)

// SocketName is the admin socket's name in the install dir (Unix).
const SocketName = "admin.sock"

// Status is what GET /status answers.
type Status struct {
	Name        string `json:"name"`
	NSURL       string `json:"ns_url"`
	URL         string `json:"url"`          // where clients download from, as enrolled
	Addr        string `json:"addr"`         // the listening address
	StoragePath string `json:"storage_path"` // the location in effect (SPEC §6.2)
	// Primary is where new downloads go: the storage path, or the target of
	// a relocation under way.
	Primary string `json:"primary,omitempty"`
	// Locations are the store roots holding packages: after a relocation
	// that consolidated the store, one (custom-location packages aside).
	Locations []Location `json:"locations"`
	// Relocation is the state of relocation: the last or running attempt,
	// its per-package states and progress, the retry counters.
	Relocation *location.Status `json:"relocation,omitempty"`
	// PackageCount counts every package of the store, and States by state
	// (failed ones that never reached the store included).
	PackageCount int            `json:"package_count"`
	States       map[string]int `json:"states"`
	// Packages is the first page of the packages, in name order (at most
	// the limit asked for; DefaultPackages by default), then those that
	// failed before reaching the store; PackagesOmitted counts the rest.
	Packages        []PackageStatus `json:"packages"`
	PackagesOmitted int             `json:"packages_omitted,omitempty"`
	// Links is the latest audit of the packages behind links (nil before
	// the first).
	Links *api.LinkAudit `json:"links,omitempty"`
}

// DefaultPackages is how many packages GET /status lists when not told:
// the status of a store of 100,000 packages stays small and quick.
const DefaultPackages = 1000

// Location is a store root and what it holds.
type Location struct {
	Root     string `json:"root"`
	Packages int    `json:"packages"`
	Bytes    int64  `json:"bytes"`
	// Linked counts the packages served through a link in another root
	// whose files are here (left behind by a relocation).
	Linked int `json:"linked,omitempty"`
	// Custom marks a package's custom location.
	Custom bool `json:"custom,omitempty"`
}

// PackageStatus is one package of Status.
type PackageStatus struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
	State   string `json:"state"` // api.StateReady etc.
	Reason  string `json:"reason,omitempty"`
	Path    string `json:"path,omitempty"`
	// Link is the link a package left behind by a relocation is served
	// through (its files stay at Path).
	Link      string `json:"link,omitempty"`
	Size      int64  `json:"size"`
	FileCount int    `json:"file_count"`
}

// Backend is what the endpoint asks of the daemon. Both methods are called
// from request goroutines, concurrently.
type Backend interface {
	// Status lists at most limit packages (Status.Packages).
	Status(ctx context.Context, limit int) (Status, error)
	// UpdateConfig polls the NS at once and returns when the answer was
	// applied (downloads it starts go on afterwards), or with the error.
	UpdateConfig(ctx context.Context) error
}

// Relocator is the relocation part of a Backend; a backend that implements
// it gets the /retry-relocation and /plan routes.
type Relocator interface {
	// RetryRelocation queues a manual relocation retry.
	RetryRelocation(ctx context.Context) error
	// PlanRelocation evaluates path as a relocation target, moving nothing.
	PlanRelocation(ctx context.Context, path string) (*relocate.Plan, error)
}

// Metrics is implemented by a Backend that has Prometheus metrics to serve
// at /metrics.
type Metrics interface {
	Metrics() http.Handler
}

// Handler returns the endpoint's HTTP handler.
func Handler(b Backend, log *slog.Logger) http.Handler {
	log = log.With("component", "admin")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		limit := DefaultPackages
		if v := r.URL.Query().Get("packages"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, "packages must be a count of packages to list (0 or more)")
				return
			}
			limit = n
		}
		st, err := b.Status(r.Context(), limit)
		if err != nil {
			log.Error("status", "err", err)
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /update-config", func(w http.ResponseWriter, r *http.Request) {
		log.Info("configuration update asked for")
		if err := b.UpdateConfig(r.Context()); err != nil {
			writeError(w, http.StatusBadGateway, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if rb, ok := b.(Relocator); ok {
		mux.HandleFunc("POST /retry-relocation", func(w http.ResponseWriter, r *http.Request) {
			if err := rb.RetryRelocation(r.Context()); err != nil {
				writeError(w, http.StatusServiceUnavailable, err.Error())
				return
			}
			w.WriteHeader(http.StatusAccepted)
		})
		mux.HandleFunc("GET /plan", func(w http.ResponseWriter, r *http.Request) {
			path := r.URL.Query().Get("path")
			if path == "" {
				writeError(w, http.StatusBadRequest, "plan: give the target as ?path=PATH")
				return
			}
			plan, err := rb.PlanRelocation(r.Context(), path)
			if err != nil {
				log.Error("relocation plan", "path", path, "err", err)
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(plan)
		})
	}
	if mb, ok := b.(Metrics); ok {
		mux.Handle("GET /metrics", mb.Metrics())
	}
	registerPage(mux, b, log)
	return mux
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Error{Error: msg})
}

// NewServer returns the http.Server for the endpoint.
// Its clients are local, but bounded all the same (httpguard's defaults).
func NewServer(b Backend, log *slog.Logger) *http.Server {
	return httpguard.Limits{}.Server(Handler(b, log), log.With("component", "admin"))
}

// ErrRunning means another Package Server answers on the socket.
var ErrRunning = errors.New("another wharf ps is running on this install dir")

// Listen listens on the admin endpoint at path (SocketPath): on Unix a
// socket with mode 0600, on Windows a named pipe that only SYSTEM, the
// Administrators and the PS's own account may open. A socket left by a PS
// that is gone is removed first; an endpoint that answers is not, and
// Listen fails with ErrRunning, so two daemons never share an install dir.
func Listen(path string) (net.Listener, error) {
	if c, err := dial(context.Background(), path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, ErrRunning)
	}
	return listen(path)
}

// Client calls the admin endpoint of the PS of one install dir.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, path, 0) },
	}
	return &Client{path: path, hc: &http.Client{Transport: tr}}
}

// Status asks the PS for its status, with DefaultPackages packages listed.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return c.StatusWith(ctx, DefaultPackages)
}

// StatusWith asks the PS for its status with at most packages packages
// listed.
func (c *Client) StatusWith(ctx context.Context, packages int) (Status, error) {
	var st Status
	resp, err := c.do(ctx, http.MethodGet, "/status?packages="+strconv.Itoa(packages))
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("status from %s: %w", c.path, err)
	}
	return st, nil
}

// UpdateConfig asks the PS to poll the NS now; it returns once the PS
// applied the answer.
func (c *Client) UpdateConfig(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodPost, "/update-config")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// RetryRelocation asks the PS for a manual relocation retry.
func (c *Client) RetryRelocation(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodPost, "/retry-relocation")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Plan asks the PS to evaluate path as a relocation target.
func (c *Client) Plan(ctx context.Context, path string) (*relocate.Plan, error) {
	resp, err := c.do(ctx, http.MethodGet, "/plan?path="+url.QueryEscape(path))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var p relocate.Plan
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return nil, fmt.Errorf("plan from %s: %w", c.path, err)
	}
	return &p, nil
}

// Metrics returns the PS's metrics in the Prometheus text format.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.do(ctx, http.MethodGet, "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://wharf-ps"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("no wharf ps answers on %s (is it running with this --install-dir?): %w", c.path, op.Err)
		}
		return nil, fmt.Errorf("%s %s on %s: %w", method, path, c.path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e api.Error
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, fmt.Errorf("%s %s: %s (HTTP %d)", method, path, e.Error, resp.StatusCode)
	}
	return resp, nil
}
