package ps

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/wharf-project/wharf/internal/httpguard"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Config configures a Package Server. Precedence: DefaultConfig, then on
// Windows the registry (LoadRegistry), then the --config file (LoadFile),
// then flags.
type Config struct {
	// InstallDir holds the credential, the state DB, the admin socket and
	// the primary location "Package Delivery". Default DefaultInstallDir().
	InstallDir string
	// NS is the Notification Server's URL. Needed to enroll; later starts
	// take it from the credential file unless it is set.
	NS string
	// EnrollToken is the one-time enrollment token, used on the first
	// start only.
	EnrollToken string
	// Name is the name to enroll under; default the host name. Later starts
	// refuse a Name that differs from the enrolled one.
	Name string
	// Addr is where packages are served: HOST:PORT. Default ":8081".
	Addr string
	// URL is the base URL clients download from, sent at enrollment.
	// Default http(s)://<host of Addr, or the host name>:<port>.
	URL string
	// TLSCert and TLSKey, both or neither: serve HTTPS instead of HTTP.
	TLSCert, TLSKey string
	// CAFile, optional, is a PEM file of certificate authorities trusted
	// besides the system's when calling the NS over HTTPS.
	CAFile string
	// MetricsAddr, optional, is a HOST:PORT where the PS also serves its
	// Prometheus metrics (/metrics), /healthz and /readyz, without a
	// token, for a scraper that cannot reach the admin socket.
	MetricsAddr string

	Storage    StorageConfig
	Relocation RelocationConfig
	Health     HealthConfig
	// Limits bound what slow or idle clients cost the package listener
	// (the [limits] section; zero: httpguard's defaults).
	Limits httpguard.Limits

	// Clock paces retries and backoffs; default the wall clock. Not in
	// files: for tests.
	Clock clock.Clock
	// HTTPClient calls the NS; default a client on http.DefaultTransport
	// trusting CAFile too. Not in files: for tests and dev.
	HTTPClient *http.Client
	// Facts answers questions about volumes (free space, fixed media) for
	// placement; default volume.New(). Not in files: for tests.
	Facts volume.Facts
}

// StorageConfig is the [storage] section.
type StorageConfig struct {
	// Reserve is the free space a volume keeps: a package goes to another
	// volume (with "allow usage of all fixed drives" on) or fails when the
	// primary volume would keep less after it, and a volume it rotates
	// onto must keep its own reserve too. A share of the volume or a size.
	// Default 5%.
	Reserve Reserve
	// Volumes, when not empty, are the only volumes rotation may use: their
	// mount points (Linux) or drive roots (Windows), e.g. "/data1" or
	// `D:\`. An entry naming no mounted volume is ignored.
	Volumes []string
}

// RelocationConfig is the [relocation] section.
type RelocationConfig struct {
	MaxAttempts int           // automatic retries; default 3
	Interval    time.Duration // between automatic retries; default 15m
	Bandwidth   int64         // copy rate limit in bytes per second; 0: none
}

// HealthConfig is the [health] section: how often the PS audits the links
// of packages left behind by a relocation, and reports its volumes' space
// and the latest audit to the NS (which forecasts when each volume fills).
type HealthConfig struct {
	LinkAuditInterval time.Duration // default (and when 0) 1h
	ReportInterval    time.Duration // default (and when 0) 1h
}

// Reserve is free space to keep: Percent of the volume, or Bytes.
type Reserve struct {
	Percent float64
	Bytes   int64
}

func (r Reserve) String() string {
	if r.Bytes > 0 {
		return wharf.FormatSize(r.Bytes)
	}
	return strconv.FormatFloat(r.Percent, 'f', -1, 64) + "%"
}

// DefaultInstallDir is /opt/wharf, or C:\Program Files\Wharf on Windows.
func DefaultInstallDir() string {
	if runtime.GOOS == "windows" {
		return `C:\Program Files\Wharf`
	}
	return "/opt/wharf"
}

// DefaultAddr is the default serving address.
const DefaultAddr = ":8081"

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		InstallDir: DefaultInstallDir(),
		Addr:       DefaultAddr,
		Storage:    StorageConfig{Reserve: Reserve{Percent: 5}},
		Relocation: RelocationConfig{MaxAttempts: 3, Interval: 15 * time.Minute},
		Health:     HealthConfig{LinkAuditInterval: time.Hour, ReportInterval: time.Hour},
	}
}

// PrimaryLocation is the default storage location of the install dir,
// <install dir>/Package Delivery.
func (c Config) PrimaryLocation() string { return filepath.Join(c.InstallDir, storeroot.DirName) }

// fileConfig is the TOML layout of --config files.
type fileConfig struct {
	NS          *string `toml:"ns"`
	Name        *string `toml:"name"`
	Addr        *string `toml:"addr"`
	URL         *string `toml:"url"`
	InstallDir  *string `toml:"install_dir"`
	TLSCert     *string `toml:"tls_cert"`
	TLSKey      *string `toml:"tls_key"`
	CAFile      *string `toml:"ca"`
	MetricsAddr *string `toml:"metrics_addr"`
	Storage     struct {
		Reserve *string  `toml:"reserve"`
		Volumes []string `toml:"volumes"`
	} `toml:"storage"`
	Limits     httpguard.File `toml:"limits"`
	Relocation struct {
		MaxAttempts *int    `toml:"max_attempts"`
		Interval    *string `toml:"interval"`
		Bandwidth   *string `toml:"bandwidth"`
	} `toml:"relocation"`
	Health struct {
		LinkAuditInterval *string `toml:"link_audit_interval"`
		ReportInterval    *string `toml:"report_interval"`
	} `toml:"health"`
}

// LoadFile reads the TOML file at path over c: keys present in the file
// replace c's values. Unknown keys and bad values are errors naming them,
// all reported at once.
func (c *Config) LoadFile(path string) error {
	var f fileConfig
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	var errs []error
	var unknown []string
	for _, k := range md.Undecoded() {
		unknown = append(unknown, k.String())
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("config %s: unknown key %q", path, k))
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.NS, f.NS)
	set(&c.Name, f.Name)
	set(&c.Addr, f.Addr)
	set(&c.URL, f.URL)
	set(&c.InstallDir, f.InstallDir)
	set(&c.TLSCert, f.TLSCert)
	set(&c.TLSKey, f.TLSKey)
	set(&c.CAFile, f.CAFile)
	set(&c.MetricsAddr, f.MetricsAddr)
	if err := f.Limits.Apply(&c.Limits); err != nil {
		errs = append(errs, fmt.Errorf("config %s: %w", path, err))
	}
	if v := f.Storage.Reserve; v != nil {
		r, err := ParseReserve(*v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %s: storage.reserve: %w", path, err))
		}
		c.Storage.Reserve = r
	}
	if f.Storage.Volumes != nil {
		c.Storage.Volumes = f.Storage.Volumes
	}
	if v := f.Relocation.MaxAttempts; v != nil {
		c.Relocation.MaxAttempts = *v
	}
	if v := f.Relocation.Interval; v != nil {
		d, err := time.ParseDuration(*v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %s: relocation.interval: %w", path, err))
		}
		c.Relocation.Interval = d
	}
	for _, d := range []struct {
		key string
		v   *string
		dst *time.Duration
	}{
		{"health.link_audit_interval", f.Health.LinkAuditInterval, &c.Health.LinkAuditInterval},
		{"health.report_interval", f.Health.ReportInterval, &c.Health.ReportInterval},
	} {
		if d.v == nil {
			continue
		}
		v, err := time.ParseDuration(*d.v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %s: %s: %w", path, d.key, err))
		}
		*d.dst = v
	}
	if v := f.Relocation.Bandwidth; v != nil {
		b, err := wharf.ParseRate(*v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %s: relocation.bandwidth: %w", path, err))
		}
		c.Relocation.Bandwidth = b
	}
	return errors.Join(errs...)
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.InstallDir == "" {
		bad("install dir: empty")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr %q: want HOST:PORT: %v", c.Addr, err)
	}
	if c.NS != "" {
		if err := checkURL(c.NS); err != nil {
			bad("ns: %v", err)
		}
	}
	if c.URL != "" {
		if err := checkURL(c.URL); err != nil {
			bad("url: %v", err)
		}
	}
	if c.Name != "" {
		if _, err := wharf.ParseServerName(c.Name); err != nil {
			bad("name: %v", err)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics_addr %q: want HOST:PORT: %v", c.MetricsAddr, err)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls: give both a certificate and a key, or neither")
	}
	if r := c.Storage.Reserve; r.Bytes < 0 || r.Percent < 0 || r.Percent >= 100 || math.IsNaN(r.Percent) {
		bad("storage.reserve %s: want a share below 100%% or a size", r)
	}
	for _, v := range c.Storage.Volumes {
		if !filepath.IsAbs(v) {
			bad("storage.volumes: %q is not an absolute path", v)
		}
	}
	if c.Relocation.MaxAttempts < 0 {
		bad("relocation.max_attempts %d: want 0 or more", c.Relocation.MaxAttempts)
	}
	if c.Relocation.Interval <= 0 {
		bad("relocation.interval %s: want a positive duration", c.Relocation.Interval)
	}
	if c.Relocation.Bandwidth < 0 {
		bad("relocation.bandwidth: want a positive rate")
	}
	for key, d := range map[string]time.Duration{"link_audit_interval": c.Health.LinkAuditInterval, "report_interval": c.Health.ReportInterval} {
		if d < 0 || d > 0 && d < time.Second {
			bad("health.%s %s: want a second or more (0: the default, 1h)", key, d)
		}
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s)://host[:port] URL", s)
	}
	return nil
}

// ParseReserve reads "5%" or a size ("2GiB").
func ParseReserve(s string) (Reserve, error) {
	t := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || v >= 100 {
			return Reserve{}, fmt.Errorf("invalid reserve %q: want a share from 0%% to below 100%%", s)
		}
		return Reserve{Percent: v}, nil
	}
	n, err := wharf.ParseSize(t)
	if err != nil {
		return Reserve{}, fmt.Errorf("invalid reserve %q: want a share such as 5%% or a size such as 2GiB", s)
	}
	return Reserve{Bytes: n}, nil
}
