package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/knownfolder"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Defaults of the global policies before an administrator edits them.
var (
	DefaultPackageServerSettings = api.PackageServerSettings{
		LinuxLocation:   ptr(api.LocationDefault),
		WindowsLocation: ptr(api.LocationDefault),
		AllFixedDrives:  ptr(false),
		RelocationMode:  ptr(api.RelocationOnline),
	}
	DefaultSiteServerSettings = api.SiteServerSettings{
		PollIntervalSeconds: ptr(int(DefaultPollWait / time.Second)),
		DownloadConcurrency: ptr(4),
		DownloadBandwidth:   ptr(int64(0)),
	}
)

func ptr[T any](v T) *T { return &v }

// Ranges of the Global Site Server Settings.
const (
	MaxPollIntervalSeconds = int(MaxPollWait / time.Second)
	MaxDownloadConcurrency = 64
)

func checkPackageServerSettings(s api.PackageServerSettings) error {
	var errs []error
	if v := s.LinuxLocation; v != nil && *v != api.LocationDefault {
		if err := checkLinuxPath(*v); err != nil {
			errs = append(errs, fmt.Errorf("linux_location: %v", err))
		} else if err := checkNotKnown(*v, knownfolder.Linux, false); err != nil {
			errs = append(errs, fmt.Errorf("linux_location: %v", err))
		}
	}
	if v := s.WindowsLocation; v != nil && *v != api.LocationDefault {
		if err := checkWindowsPath(*v); err != nil {
			errs = append(errs, fmt.Errorf("windows_location: %v", err))
		} else if err := checkNotKnown(*v, knownfolder.WindowsDefaults, true); err != nil {
			errs = append(errs, fmt.Errorf("windows_location: %v", err))
		}
	}
	if v := s.RelocationMode; v != nil && *v != api.RelocationOnline && *v != api.RelocationExclusive {
		errs = append(errs, fmt.Errorf("relocation_mode: %q, want online or exclusive", *v))
	}
	return joinInvalid(errs)
}

// checkNotKnown refuses a storage location in or below a known system
// folder (SPEC §6.1.4), which every Package Server of that OS refuses: the
// administrator hears it when saving, not after the attempt. The Package
// Server still checks what the path resolves to on its own machine.
func checkNotKnown(p string, set knownfolder.Set, windows bool) error {
	if known, which := knownfolder.Match(p, set, windows); known {
		return fmt.Errorf("%s is the system folder %s or below it, which Package Servers refuse to keep packages in (known-folder); choose a folder outside the system folders, or default", p, which)
	}
	return nil
}

func checkSiteServerSettings(s api.SiteServerSettings) error {
	var errs []error
	if v := s.PollIntervalSeconds; v != nil && (*v < 1 || *v > MaxPollIntervalSeconds) {
		errs = append(errs, fmt.Errorf("poll_interval_seconds: %d, want 1 to %d", *v, MaxPollIntervalSeconds))
	}
	if v := s.DownloadConcurrency; v != nil && (*v < 1 || *v > MaxDownloadConcurrency) {
		errs = append(errs, fmt.Errorf("download_concurrency: %d, want 1 to %d", *v, MaxDownloadConcurrency))
	}
	if v := s.DownloadBandwidth; v != nil && *v < 0 {
		errs = append(errs, fmt.Errorf("download_bandwidth: %d is negative (0 means no limit)", *v))
	}
	return joinInvalid(errs)
}

// joinInvalid makes one invalid-input error of every problem, in one line.
func joinInvalid(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return wharf.Errorf(wharf.ErrInvalid, "%s", strings.Join(msgs, "; "))
}

// overlay copies every field set (non-nil) in src onto dst. Both point to
// the same struct type of pointer fields.
func overlay(dst, src any) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := 0; i < s.NumField(); i++ {
		if !s.Field(i).IsNil() {
			d.Field(i).Set(s.Field(i))
		}
	}
}

// setFields lists the JSON names of the fields set in v (a pointer to a
// struct of pointer fields).
func setFields(v any) []string {
	var out []string
	s := reflect.ValueOf(v).Elem()
	for i := 0; i < s.NumField(); i++ {
		if !s.Field(i).IsNil() {
			out = append(out, strings.Split(s.Type().Field(i).Tag.Get("json"), ",")[0])
		}
	}
	return out
}

// policyKind binds a policy kind to its settings type.
type policyKind[T any] struct {
	name     string
	defaults T
	check    func(T) error
}

var (
	packageServerKind = policyKind[api.PackageServerSettings]{api.PolicyPackageServer, DefaultPackageServerSettings, checkPackageServerSettings}
	siteServerKind    = policyKind[api.SiteServerSettings]{api.PolicySiteServer, DefaultSiteServerSettings, checkSiteServerSettings}
)

// load reads a stored policy; a missing global policy is the defaults at
// version 0, a missing override is ErrNotFound.
func (k policyKind[T]) load(ctx context.Context, st PolicyStore, server wharf.ServerName) (T, PolicyRecord, error) {
	var v T
	rec, err := st.Policy(ctx, server, k.name)
	if errors.Is(err, wharf.ErrNotFound) && server == "" {
		return k.defaults, PolicyRecord{Kind: k.name}, nil
	}
	if err != nil {
		return v, rec, err
	}
	if err := json.Unmarshal([]byte(rec.Data), &v); err != nil {
		return v, rec, fmt.Errorf("policy %s of %q in store is corrupt: %w", k.name, server, err)
	}
	if server == "" {
		full := k.defaults
		overlay(&full, &v) // fields added by a later version get their defaults
		v = full
	}
	return v, rec, nil
}

// update merges in into the stored policy and stores it, retrying when a
// concurrent edit wins the race.
func (k policyKind[T]) update(ctx context.Context, c *Catalog, server wharf.ServerName, in T) (T, PolicyRecord, error) {
	if err := k.check(in); err != nil {
		var zero T
		return zero, PolicyRecord{}, err
	}
	for attempt := 0; ; attempt++ {
		cur, rec, err := k.load(ctx, c.policies, server)
		if errors.Is(err, wharf.ErrNotFound) {
			err = nil // a new override
		}
		if err != nil {
			return cur, rec, err
		}
		overlay(&cur, &in)
		data, err := json.Marshal(cur)
		if err != nil {
			return cur, rec, err
		}
		rec, err = c.policies.PutPolicy(ctx, server, k.name, string(data), rec.Version, c.now().UTC())
		if errors.Is(err, wharf.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return cur, rec, err
		}
		c.changed(ctx, Change{Part: PartPolicies, Server: server})
		return cur, rec, nil
	}
}

// serverForPolicy resolves a server name for an override; "" is global.
func (c *Catalog) serverForPolicy(ctx context.Context, name string) (wharf.ServerName, error) {
	if name == "" {
		return "", nil
	}
	n, err := wharf.ParseServerName(name)
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	if _, err := c.servers.Server(ctx, n); err != nil {
		return "", err
	}
	return n, nil
}

// PackageServerPolicy returns the global Package Server Settings (server
// "") or a server's override (ErrNotFound when it has none).
func (c *Catalog) PackageServerPolicy(ctx context.Context, server string) (api.PackageServerPolicy, error) {
	n, err := c.serverForPolicy(ctx, server)
	if err != nil {
		return api.PackageServerPolicy{}, err
	}
	v, rec, err := packageServerKind.load(ctx, c.policies, n)
	if err != nil {
		return api.PackageServerPolicy{}, err
	}
	return api.PackageServerPolicy{Server: string(n), Version: rec.Version, UpdatedAt: rec.UpdatedAt, Settings: v}, nil
}

// SetPackageServerPolicy changes the fields set in in, globally (server "")
// or in the server's override. Invalid input changes nothing.
func (c *Catalog) SetPackageServerPolicy(ctx context.Context, server string, in api.PackageServerSettings) (api.PackageServerPolicy, error) {
	n, err := c.serverForPolicy(ctx, server)
	if err != nil {
		return api.PackageServerPolicy{}, err
	}
	v, rec, err := packageServerKind.update(ctx, c, n, in)
	if err != nil {
		return api.PackageServerPolicy{}, err
	}
	return api.PackageServerPolicy{Server: string(n), Version: rec.Version, UpdatedAt: rec.UpdatedAt, Settings: v}, nil
}

// SiteServerPolicy returns the global Site Server Settings or an override.
func (c *Catalog) SiteServerPolicy(ctx context.Context, server string) (api.SiteServerPolicy, error) {
	n, err := c.serverForPolicy(ctx, server)
	if err != nil {
		return api.SiteServerPolicy{}, err
	}
	v, rec, err := siteServerKind.load(ctx, c.policies, n)
	if err != nil {
		return api.SiteServerPolicy{}, err
	}
	return api.SiteServerPolicy{Server: string(n), Version: rec.Version, UpdatedAt: rec.UpdatedAt, Settings: v}, nil
}

// SetSiteServerPolicy changes the fields set in in, globally or in an
// override.
func (c *Catalog) SetSiteServerPolicy(ctx context.Context, server string, in api.SiteServerSettings) (api.SiteServerPolicy, error) {
	n, err := c.serverForPolicy(ctx, server)
	if err != nil {
		return api.SiteServerPolicy{}, err
	}
	v, rec, err := siteServerKind.update(ctx, c, n, in)
	if err != nil {
		return api.SiteServerPolicy{}, err
	}
	return api.SiteServerPolicy{Server: string(n), Version: rec.Version, UpdatedAt: rec.UpdatedAt, Settings: v}, nil
}

// ResetPolicy removes a server's override of a policy kind; kind "" removes
// both. Removing an override that does not exist is ErrNotFound only when
// a single kind is named.
func (c *Catalog) ResetPolicy(ctx context.Context, server, kind string) error {
	n, err := c.serverForPolicy(ctx, server)
	if err != nil {
		return err
	}
	if n == "" {
		return wharf.Errorf(wharf.ErrInvalid, "name a server: the global policies cannot be removed")
	}
	kinds := []string{kind}
	switch kind {
	case "":
		kinds = []string{api.PolicyPackageServer, api.PolicySiteServer}
	case api.PolicyPackageServer, api.PolicySiteServer:
	default:
		return fmt.Errorf("policy kind %q: %w", kind, wharf.ErrNotFound)
	}
	for _, k := range kinds {
		err := c.policies.DeletePolicy(ctx, n, k)
		if errors.Is(err, wharf.ErrNotFound) && kind == "" {
			continue
		}
		if err != nil {
			return err
		}
	}
	c.changed(ctx, Change{Part: PartPolicies, Server: n})
	return nil
}

// EffectivePolicy computes what a server runs with: the global policies
// with its overrides applied. This is the one place that does it.
func (c *Catalog) EffectivePolicy(ctx context.Context, server string) (api.EffectivePolicy, error) {
	n, err := wharf.ParseServerName(server)
	if err != nil {
		return api.EffectivePolicy{}, fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	s, err := c.servers.Server(ctx, n)
	if err != nil {
		return api.EffectivePolicy{}, err
	}
	return c.effective(ctx, s)
}

func (c *Catalog) effective(ctx context.Context, s Server) (api.EffectivePolicy, error) {
	ps, _, err := packageServerKind.load(ctx, c.policies, "")
	if err != nil {
		return api.EffectivePolicy{}, err
	}
	ss, _, err := siteServerKind.load(ctx, c.policies, "")
	if err != nil {
		return api.EffectivePolicy{}, err
	}
	var psO *api.PackageServerSettings
	if o, _, err := packageServerKind.load(ctx, c.policies, s.Name); err == nil {
		psO = &o
	} else if !errors.Is(err, wharf.ErrNotFound) {
		return api.EffectivePolicy{}, err
	}
	var ssO *api.SiteServerSettings
	if o, _, err := siteServerKind.load(ctx, c.policies, s.Name); err == nil {
		ssO = &o
	} else if !errors.Is(err, wharf.ErrNotFound) {
		return api.EffectivePolicy{}, err
	}
	return effectiveFrom(s, ps, ss, psO, ssO), nil
}

// effectiveFrom applies a server's overrides (nil: none) to the global
// policies. The console, the API and the agent configurations all compute
// the effective policy here.
func effectiveFrom(s Server, ps api.PackageServerSettings, ss api.SiteServerSettings, psO *api.PackageServerSettings, ssO *api.SiteServerSettings) api.EffectivePolicy {
	out := api.EffectivePolicy{Server: string(s.Name), OS: s.OS}
	if psO != nil {
		overlay(&ps, psO)
		out.Overridden = append(out.Overridden, setFields(psO)...)
	}
	if ssO != nil {
		overlay(&ss, ssO)
		out.Overridden = append(out.Overridden, setFields(ssO)...)
	}
	out.PackageServer, out.SiteServer = ps, ss
	return out
}

// agentSettings flattens an effective policy for the server's OS.
func agentSettings(e api.EffectivePolicy) api.AgentSettings {
	loc := *e.PackageServer.LinuxLocation
	if e.OS == "windows" {
		loc = *e.PackageServer.WindowsLocation
	}
	return api.AgentSettings{
		PollWaitSeconds:     *e.SiteServer.PollIntervalSeconds,
		DownloadConcurrency: *e.SiteServer.DownloadConcurrency,
		DownloadBandwidth:   *e.SiteServer.DownloadBandwidth,
		StorageLocation:     loc,
		AllFixedDrives:      *e.PackageServer.AllFixedDrives,
		RelocationMode:      *e.PackageServer.RelocationMode,
	}
}
