package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Limits on what a PS reports and what the NS keeps.
const (
	MaxEventPackages  = 200_000
	MaxHistory        = 1000
	DefaultAlertLimit = 200
)

// The relocation status bits the NS acts on (SPEC §6.3).
const (
	statusSuccess          = uint32(wharf.RelocationSuccess)
	statusSomeNotMoved     = uint32(wharf.RelocationSomeNotMoved)
	statusInProgress       = uint32(wharf.RelocationInProgress)
	statusPrerequisites    = uint32(wharf.RelocationPrerequisites)
	statusRetriesExhausted = uint32(wharf.RelocationRetriesExhausted)
	statusAllBits          = uint32(wharf.RelocationAllBits)
)

func statusNames(bits uint32) []string { return wharf.RelocationStatus(bits).Names() }

// ReportLocation stores a Package Location Status event from a server. An
// event without Progress ends an attempt: it goes to the history and may
// raise an alert. The NS computes the flag names from the bits itself.
func (c *Catalog) ReportLocation(ctx context.Context, s Server, ev api.LocationStatus) error {
	switch {
	case ev.LastStatus&^statusAllBits != 0:
		return wharf.Errorf(wharf.ErrInvalid, "last_status: unknown bits %#x", ev.LastStatus&^statusAllBits)
	case ev.VolumeTotalMB < 0 || ev.VolumeFreeMB < 0 || ev.PSUsedMB < 0 || ev.VolumeRequiredMB < 0:
		return wharf.Errorf(wharf.ErrInvalid, "sizes must not be negative")
	case ev.AttemptsDone < 0 || ev.MaxAttempts < 0:
		return wharf.Errorf(wharf.ErrInvalid, "attempts must not be negative")
	case len(ev.StoragePath) > maxWindowsPath || len(ev.StoragePathInEffect) > maxWindowsPath || len(ev.Message) > 4096:
		return wharf.Errorf(wharf.ErrInvalid, "storage_path, storage_path_in_effect or message too long")
	case len(ev.Outcome) > 16 || !knownOutcome(ev.Outcome):
		return wharf.Errorf(wharf.ErrInvalid, "outcome %q: want success, warning, refused, canceled, error or none", ev.Outcome)
	case len(ev.Packages) > MaxEventPackages:
		return wharf.Errorf(wharf.ErrInvalid, "packages: %d, at most %d", len(ev.Packages), MaxEventPackages)
	case ev.LastAttempt.IsZero():
		return wharf.Errorf(wharf.ErrInvalid, "last_attempt: not set")
	}
	for _, f := range []struct{ name, v string }{{"storage_path", ev.StoragePath},
		{"storage_path_in_effect", ev.StoragePathInEffect}, {"message", ev.Message}} {
		if err := wharf.CheckText(f.v); err != nil {
			return wharf.Errorf(wharf.ErrInvalid, "%s: %v", f.name, err)
		}
	}
	for i, p := range ev.Packages {
		if err := errors.Join(wharf.CheckText(p.Path), wharf.CheckText(p.Reason)); err != nil {
			return wharf.Errorf(wharf.ErrInvalid, "packages[%d]: path or reason: %v", i, err)
		}
	}
	now := c.now().UTC().Truncate(time.Microsecond)
	ev.LastStatusFlags = statusNames(ev.LastStatus)
	ev.ReceivedAt = now
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	done := ev.Progress == nil && ev.LastStatus&statusInProgress == 0
	if err := c.locations.PutLocationEvent(ctx, s.Name, now, string(data), done); err != nil {
		return err
	}
	if done {
		if a, ok := alertFor(s.Name, ev); ok {
			if _, err := c.raise(ctx, a); err != nil {
				return err
			}
		}
		if err := c.locationHealth(ctx, s.Name, ev); err != nil {
			return err
		}
	}
	return nil
}

// alertFor decides whether an ended attempt deserves an alert.
func alertFor(server wharf.ServerName, ev api.LocationStatus) (Alert, bool) {
	a := Alert{Server: server, Level: api.AlertWarning}
	switch {
	case ev.LastStatus&statusRetriesExhausted != 0:
		a.Message = fmt.Sprintf("%s: automatic relocation retries to %s are exhausted (%d of %d); some packages stay behind links",
			server, ev.StoragePath, ev.AttemptsDone, ev.MaxAttempts)
	case ev.LastStatus&statusSomeNotMoved != 0:
		a.Message = fmt.Sprintf("%s: %s (target %s)", server, wharf.RelocationWarning, ev.StoragePath)
	case ev.LastStatus&statusPrerequisites != 0:
		a.Message = fmt.Sprintf("%s: relocation to %s refused: %s", server, ev.StoragePath,
			strings.Join(statusNames(ev.LastStatus&statusPrerequisites), ", "))
	case ev.LastStatus&statusSuccess != 0:
		a.Level = api.AlertInfo
		a.Message = fmt.Sprintf("%s: all packages are at the new location %s", server, ev.StoragePath)
	default:
		return a, false
	}
	return a, true
}

func knownOutcome(o string) bool {
	switch o {
	case "", api.OutcomeSuccess, api.OutcomeWarning, api.OutcomeRefused, api.OutcomeCanceled, api.OutcomeError:
		return true
	}
	return false
}

// movedStore reports whether an event ended an attempt that made its
// target the storage path (SPEC §6.2: after success or a warning).
func movedStore(ev api.LocationStatus) bool {
	st := wharf.RelocationStatus(ev.LastStatus)
	return ev.Progress == nil && !st.Has(wharf.RelocationInProgress) &&
		(st.Has(wharf.RelocationSuccess) || st.Has(wharf.RelocationSomeNotMoved))
}

// storagePathInEffect is where a server keeps its packages now, from its
// latest event (nil: none yet, the default location, ""): the path in
// effect it reports; for an event of an older Package Server, which does
// not report it, the target of the latest attempt that moved the store
// (one history read), or "" when none did. The API, the CLI and the console
// all show this path, never the target of a refused attempt.
func (c *Catalog) storagePathInEffect(ctx context.Context, name wharf.ServerName, ls *api.LocationStatus) (string, error) {
	switch {
	case ls == nil:
		return "", nil
	case ls.StoragePathInEffect != "":
		return ls.StoragePathInEffect, nil
	case movedStore(*ls):
		return ls.StoragePath, nil
	}
	list, err := c.locations.LocationHistory(ctx, name, historyLookback)
	if err != nil {
		return "", err
	}
	for _, e := range list {
		var ev api.LocationStatus
		if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
			return "", fmt.Errorf("location history of %s in store is corrupt: %w", name, err)
		}
		if ev.StoragePathInEffect != "" {
			return ev.StoragePathInEffect, nil
		}
		if movedStore(ev) {
			return ev.StoragePath, nil
		}
	}
	return "", nil
}

// historyLookback is how far back storagePathInEffect looks.
const historyLookback = 50

// latestLocation returns the server's latest event, or nil.
func (c *Catalog) latestLocation(ctx context.Context, name wharf.ServerName) (*api.LocationStatus, error) {
	e, err := c.locations.LatestLocationEvent(ctx, name)
	if errors.Is(err, wharf.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ev api.LocationStatus
	if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
		return nil, fmt.Errorf("location status of %s in store is corrupt: %w", name, err)
	}
	return &ev, nil
}

// LocationHistory returns a server's ended attempts, newest first.
func (c *Catalog) LocationHistory(ctx context.Context, name string, limit int) (api.LocationHistory, error) {
	n, err := c.serverForPolicy(ctx, name)
	if err != nil || n == "" {
		return api.LocationHistory{}, fmt.Errorf("server %q: %w", name, wharf.ErrNotFound)
	}
	if limit <= 0 || limit > MaxHistory {
		limit = MaxHistory
	}
	list, err := c.locations.LocationHistory(ctx, n, limit)
	if err != nil {
		return api.LocationHistory{}, err
	}
	out := api.LocationHistory{Events: make([]api.LocationStatus, 0, len(list))}
	for _, e := range list {
		var ev api.LocationStatus
		if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
			return out, fmt.Errorf("location history of %s in store is corrupt: %w", n, err)
		}
		out.Events = append(out.Events, ev)
	}
	return out, nil
}

// Alerts lists alerts, newest first.
func (c *Catalog) Alerts(ctx context.Context, unreadOnly bool) (api.AlertList, error) {
	list, err := c.locations.ListAlerts(ctx, unreadOnly, DefaultAlertLimit)
	if err != nil {
		return api.AlertList{}, err
	}
	out := api.AlertList{Alerts: make([]api.Alert, 0, len(list))}
	for _, a := range list {
		out.Alerts = append(out.Alerts, wireAlert(a))
	}
	return out, nil
}

// Alert limits: a server raises at most AlertsPerServer new alerts in any
// AlertWindow (repeats of an unread alert are not new: they count on it).
// Past that, each new one is counted on a single "too many alerts" alert
// of that server instead, so one server, however it behaves, cannot flood
// the alert list.
const (
	AlertsPerServer = 20
	AlertWindow     = time.Hour
)

// raise stores an alert now, or counts a repeat of the same unread alert
// (same server, level and message): repeated attempts that end alike, or
// manual retries while the automatic ones are exhausted, make one alert
// that counts them, not one alert each. A server over its limit
// (AlertsPerServer in AlertWindow) has its new alert counted on its "too
// many alerts" alert.
func (c *Catalog) raise(ctx context.Context, a Alert) (Alert, error) {
	now := c.now().UTC().Truncate(time.Microsecond)
	a.ID, a.CreatedAt, a.LastSeenAt = string(wharf.NewPackageID()), now, now
	a.Fingerprint = alertFingerprint(a)
	if a.Server != "" {
		out, err := c.locations.RepeatAlert(ctx, a.Fingerprint, now)
		if err == nil {
			c.observer.AlertRaised(out.Level, true)
			return out, nil
		}
		if !errors.Is(err, wharf.ErrNotFound) {
			return Alert{}, err
		}
		n, err := c.locations.CountAlertsSince(ctx, a.Server, now.Add(-AlertWindow))
		if err != nil {
			return Alert{}, err
		}
		if n >= AlertsPerServer {
			c.log.Warn("alert over the server's limit, counted on its too-many-alerts alert", "server", a.Server, "message", a.Message)
			a.Level = api.AlertWarning
			a.Message = fmt.Sprintf("%s: more than %d new alerts within %s; further ones are counted here (its location history has them all)",
				a.Server, AlertsPerServer, AlertWindow)
			a.Fingerprint = alertFingerprint(a)
		}
	}
	out, err := c.locations.RaiseAlert(ctx, a)
	if err == nil {
		c.observer.AlertRaised(out.Level, out.ID != a.ID)
	}
	return out, err
}

// alertFingerprint identifies an alert by what it says.
func alertFingerprint(a Alert) string {
	h := sha256.Sum256([]byte(string(a.Server) + "\x00" + a.Level + "\x00" + a.Message))
	return hex.EncodeToString(h[:])
}

// UnreadAlerts counts the unread alerts by level.
func (c *Catalog) UnreadAlerts(ctx context.Context) (map[string]int, error) {
	return c.locations.CountUnreadAlerts(ctx)
}

// MarkAllAlertsRead marks every unread alert read and returns how many.
func (c *Catalog) MarkAllAlertsRead(ctx context.Context) (int, error) {
	return c.locations.MarkAllAlertsRead(ctx, c.now().UTC())
}

// MarkAlertRead marks an alert read.
func (c *Catalog) MarkAlertRead(ctx context.Context, id string) error {
	if _, err := wharf.ParsePackageID(id); err != nil {
		return fmt.Errorf("alert %q: %w", id, wharf.ErrNotFound)
	}
	return c.locations.MarkAlertRead(ctx, id, c.now().UTC())
}

// ---- server tasks

// CreateTask queues a task for a server; the server gets it with its next
// config (its long poll wakes at once).
func (c *Catalog) CreateTask(ctx context.Context, name string, req api.TaskRequest) (api.Task, error) {
	n, err := c.serverForPolicy(ctx, name)
	if err != nil || n == "" {
		return api.Task{}, fmt.Errorf("server %q: %w", name, wharf.ErrNotFound)
	}
	s, err := c.servers.Server(ctx, n)
	if err != nil {
		return api.Task{}, err
	}
	switch req.Type {
	case api.TaskRetryRelocation, api.TaskRotateCredential:
		if req.Path != "" {
			return api.Task{}, wharf.Errorf(wharf.ErrInvalid, "path: a %s task takes no path", req.Type)
		}
	case api.TaskCheckLocation:
		check := checkLinuxPath
		if s.OS == "windows" {
			check = checkWindowsPath
		}
		if err := check(req.Path); err != nil {
			return api.Task{}, wharf.Errorf(wharf.ErrInvalid, "path: %v", err)
		}
	default:
		return api.Task{}, wharf.Errorf(wharf.ErrInvalid, "type %q: want %s, %s or %s", req.Type, api.TaskRetryRelocation, api.TaskCheckLocation, api.TaskRotateCredential)
	}
	args, _ := json.Marshal(req)
	t := Task{ID: string(wharf.NewPackageID()), Server: n, Type: req.Type, Args: string(args),
		CreatedAt: c.now().UTC().Truncate(time.Microsecond)}
	if err := c.tasks.CreateTask(ctx, t); err != nil {
		return api.Task{}, err
	}
	c.changed(ctx, Change{Part: PartTasks, Server: n})
	return wireTask(t)
}

// TaskStatus returns a task with its result once the server answered.
func (c *Catalog) TaskStatus(ctx context.Context, name, id string) (api.Task, error) {
	n, err := wharf.ParseServerName(name)
	if err != nil {
		return api.Task{}, fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	t, err := c.tasks.Task(ctx, n, id)
	if err != nil {
		return api.Task{}, err
	}
	return wireTask(t)
}

// CompleteTask records a server's answer to one of its tasks.
func (c *Catalog) CompleteTask(ctx context.Context, s Server, id string, res api.TaskResult) error {
	if len(res.Error) > 4096 {
		return wharf.Errorf(wharf.ErrInvalid, "error: longer than 4096 bytes")
	}
	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if err := c.tasks.CompleteTask(ctx, s.Name, id, string(data), c.now().UTC()); err != nil {
		return err
	}
	c.changed(ctx, Change{Part: PartTasks, Server: s.Name})
	return nil
}
