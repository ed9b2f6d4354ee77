package api

import "time"

// LocationStatus is the Package Location Status event (SPEC §6.7) a Package
// Server sends on every relocation attempt, automatic or manual, including
// one refused by a prerequisite, and while an attempt runs (with Progress).
// The first block of fields is the article's; the rest is Wharf's own.
type LocationStatus struct {
	StoragePath      string    `json:"storage_path"`
	VolumeTotalMB    int64     `json:"volume_total_mb"`
	VolumeFreeMB     int64     `json:"volume_free_mb"`
	PSUsedMB         int64     `json:"ps_used_mb"`
	LastAttempt      time.Time `json:"last_attempt"`
	LastStatus       uint32    `json:"last_status"`
	LastStatusFlags  []string  `json:"last_status_flags"`
	VolumeRequiredMB int64     `json:"volume_required_mb"`
	AttemptsDone     int       `json:"attempts_done"`
	MaxAttempts      int       `json:"max_attempts"`

	// StoragePathInEffect is where the store is when the event is sent:
	// the location in effect, whatever the attempt targeted (StoragePath
	// is the target, also of an attempt a prerequisite refused).
	StoragePathInEffect string `json:"storage_path_in_effect,omitempty"`
	// Outcome is how an ended attempt ended, in one word (Outcome*
	// constants); empty while it runs.
	Outcome string `json:"outcome,omitempty"`
	// Message is the attempt's outcome in words, such as "Some of the
	// files have not been moved to the new location.".
	Message string `json:"message,omitempty"`
	// Prerequisites are the verdicts of the checks (SPEC §6.1).
	Prerequisites []Prerequisite `json:"prerequisites,omitempty"`
	// Packages is the relocation state of each package (SPEC §6.6) when
	// the attempt deals with at most MaxEventPackages packages. Above
	// that, only the packages that did not move (linked, failed, and
	// pending ones once the attempt ended), at most MaxEventPackages of
	// them; PackagesOmitted counts the rows left out, and each moved
	// package's new folder reaches the NS as its package state (path).
	Packages        []RelocationPackage `json:"packages,omitempty"`
	PackagesOmitted int                 `json:"packages_omitted,omitempty"`
	// PackageCounts counts the attempt's packages by relocation state,
	// all of them, whatever Packages lists.
	PackageCounts *RelocationCounts `json:"package_counts,omitempty"`
	// Progress is set while the attempt runs.
	Progress *RelocationProgress `json:"progress,omitempty"`
	// Links is the PS's latest link audit, when it made one.
	Links *LinkAudit `json:"links,omitempty"`
	// ReceivedAt is set by the NS when it stores the event.
	ReceivedAt time.Time `json:"received_at,omitzero"`
}

// Outcomes of an ended relocation attempt. The status bits tell the
// first four apart too; canceled (a new target came, or the attempt was
// stopped) and error (it stopped on a failure) set none of the bits that
// say how it ended.
const (
	OutcomeSuccess  = "success"
	OutcomeWarning  = "warning"
	OutcomeRefused  = "refused"
	OutcomeCanceled = "canceled"
	OutcomeError    = "error"
)

// Prerequisite is the verdict of one relocation prerequisite.
type Prerequisite struct {
	Name   string `json:"name"` // the status flag it sets when it fails, e.g. "insufficient-space"
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Relocation states of one package.
const (
	RelocationMoved   = "moved"
	RelocationLinked  = "linked"
	RelocationPending = "pending"
	RelocationFailed  = "failed"
)

// RelocationPackage is one package's relocation state.
type RelocationPackage struct {
	PackageID string `json:"package_id"`
	// Name and Version are filled by the NS in GET /servers/{name}.
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	Path    string `json:"path,omitempty"`
}

// MaxEventPackages bounds the per-package rows of one Package Location
// Status event: an event stays small whatever the size of the store.
const MaxEventPackages = 1000

// RelocationCounts counts an attempt's packages by relocation state.
type RelocationCounts struct {
	Moved   int `json:"moved"`
	Linked  int `json:"linked"`
	Failed  int `json:"failed"`
	Pending int `json:"pending"`
}

// RelocationProgress tells how far a running attempt is.
type RelocationProgress struct {
	BytesDone     int64     `json:"bytes_done"`
	BytesTotal    int64     `json:"bytes_total"`
	PackagesDone  int       `json:"packages_done"`
	PackagesTotal int       `json:"packages_total"`
	StartedAt     time.Time `json:"started_at"`
	ETASeconds    int64     `json:"eta_seconds"`
}

// LocationHistory is the body of GET /servers/{name}/location-history:
// the events of a server, newest first.
type LocationHistory struct {
	Events []LocationStatus `json:"events"`
}

// Alert levels.
const (
	AlertInfo    = "info"
	AlertWarning = "warning"
)

// Alert is something an administrator should see: a relocation that
// succeeded, one that left packages behind links, retries exhausted. The
// same alert raised again while it is unread is not a new alert: its Count
// grows and LastSeenAt moves.
type Alert struct {
	ID         string    `json:"id"`
	Server     string    `json:"server,omitempty"`
	Level      string    `json:"level"`
	Message    string    `json:"message"`
	CreatedAt  time.Time `json:"created_at"`
	ReadAt     time.Time `json:"read_at,omitzero"`
	Count      int       `json:"count"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

// AlertsRead is the answer to POST /alerts/read: how many unread alerts
// it marked read.
type AlertsRead struct {
	Marked int `json:"marked"`
}

// AlertList is the body of GET /alerts.
type AlertList struct {
	Alerts []Alert `json:"alerts"`
}

// Server task types: work the NS asks a Package Server to do on its next
// poll.
const (
	TaskRetryRelocation = "retry-relocation"
	TaskCheckLocation   = "check-location"
	// TaskRotateCredential: the Package Server picks a new credential and
	// sends it (POST /agent/{name}/credential); its old one stops working
	// as the NS takes the new one.
	TaskRotateCredential = "rotate-credential"
)

// TaskRequest is the body of POST /servers/{name}/tasks.
type TaskRequest struct {
	Type string `json:"type"`
	Path string `json:"path,omitempty"` // check-location: the path to evaluate
}

// Task is a server task and, once the PS answered, its result.
type Task struct {
	ID        string    `json:"id"`
	Server    string    `json:"server"`
	Type      string    `json:"type"`
	Path      string    `json:"path,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	DoneAt    time.Time `json:"done_at,omitzero"`
	// Error is set when the PS could not do the task.
	Error string `json:"error,omitempty"`
	// Plan is the answer to check-location.
	Plan *LocationPlan `json:"plan,omitempty"`
}

// TaskResult is the body of POST /agent/{name}/tasks/{id}/result.
type TaskResult struct {
	Error string        `json:"error,omitempty"`
	Plan  *LocationPlan `json:"plan,omitempty"`
}

// LocationPlan is a PS's evaluation of a target path (SPEC §6.5), moving
// nothing.
type LocationPlan struct {
	Path            string         `json:"path"`
	Status          uint32         `json:"status"` // the prerequisite bits that would be set
	StatusFlags     []string       `json:"status_flags"`
	Prerequisites   []Prerequisite `json:"prerequisites"`
	NeededMB        int64          `json:"needed_mb"`
	FreeMB          int64          `json:"free_mb"`
	LongestPath     int            `json:"longest_path"`
	PathLimit       int            `json:"path_limit"`
	RenamePackages  int            `json:"rename_packages"`
	CopyPackages    int            `json:"copy_packages"`
	CopyBytes       int64          `json:"copy_bytes"`
	EstimateSeconds int64          `json:"estimate_seconds"`
}
