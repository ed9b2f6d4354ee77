package api

import "time"

// HealthReport is the body of POST /agent/{name}/health: what a Package
// Server reports besides its relocation attempts, on start and then
// periodically (every PS's health.report_interval): the space of every
// volume holding its store, from which the NS forecasts when each will
// fill, and its latest link audit.
type HealthReport struct {
	// At is when the PS measured, its clock; the NS takes it as the time
	// of the volume samples (not in the future, not older than 30 days).
	At      time.Time     `json:"at"`
	Volumes []VolumeUsage `json:"volumes"`
	Links   *LinkAudit    `json:"links,omitempty"`
}

// VolumeUsage is the space of one volume holding a store root of the PS.
type VolumeUsage struct {
	// Volume is its mount point (Linux) or root (`D:\`).
	Volume    string   `json:"volume"`
	Roots     []string `json:"roots,omitempty"` // the PS's store roots on it
	TotalMB   int64    `json:"total_mb"`
	FreeMB    int64    `json:"free_mb"`    // what an unprivileged writer may still use
	UsedMB    int64    `json:"used_mb"`    // by this PS's packages
	ReserveMB int64    `json:"reserve_mb"` // storage.reserve on this volume
}

// MaxHealthVolumes bounds the volumes of one report.
const MaxHealthVolumes = 256

// Link audit problem kinds (LinkProblem.Kind).
const (
	// LinkMissing: the link at the target is gone; the package is still
	// served from its folder. A retry relocation moves it or links it
	// again.
	LinkMissing = "link-missing"
	// LinkStale: the link leads elsewhere than to the package's folder
	// (the package drifted, e.g. onto a rotated volume). A retry
	// relocation puts the package in its place.
	LinkStale = "link-stale"
	// LinkTargetUnavailable: the package's folder is on a store root that
	// is unavailable (its volume not mounted, its marker gone): the
	// package is not served. Mended when the volume is back (a retry then
	// moves it).
	LinkTargetUnavailable = "target-unavailable"
	// LinkTargetMissing: the package's folder is gone though its root is
	// there: the package is not whole at this PS.
	LinkTargetMissing = "target-missing"
)

// LinkAudit is the result of a Package Server's check of the packages a
// relocation left behind links (SPEC §6.2): each link must be at its
// place, lead to the package's folder, and that folder must be there on a
// mounted volume.
type LinkAudit struct {
	At time.Time `json:"at"`
	// Links counts the packages behind a link, all checked.
	Links int `json:"links"`
	// Counts counts the problems by kind.
	Counts map[string]int `json:"counts,omitempty"`
	// Problems lists them, at most MaxLinkProblems; ProblemsOmitted
	// counts the others.
	Problems        []LinkProblem `json:"problems,omitempty"`
	ProblemsOmitted int           `json:"problems_omitted,omitempty"`
}

// MaxLinkProblems bounds the problems one audit lists.
const MaxLinkProblems = 1000

// LinkProblem is one broken link.
type LinkProblem struct {
	PackageID string `json:"package_id"`
	Name      string `json:"name,omitempty"`
	Version   string `json:"version,omitempty"`
	Kind      string `json:"kind"`
	Link      string `json:"link"`   // where the link is, or should be
	Folder    string `json:"folder"` // where the package is, as the PS's index says
	Detail    string `json:"detail,omitempty"`
}

// ServerHealth is what the NS keeps of a server's health reports: the
// latest link audit (from a health report or a Package Location Status
// event, whichever is newer), its volumes and the forecast of each.
type ServerHealth struct {
	ReportedAt time.Time        `json:"reported_at"`
	Volumes    []VolumeUsage    `json:"volumes,omitempty"`
	Links      *LinkAudit       `json:"links,omitempty"`
	Capacity   []VolumeForecast `json:"capacity,omitempty"`
}

// VolumeForecast is the NS's forecast of when a volume's free space falls
// under its reserve at the growth of its recent history (a least-squares
// line through the free space the PS reported over the last
// ForecastWindow).
type VolumeForecast struct {
	Volume    string `json:"volume"`
	FreeMB    int64  `json:"free_mb"`
	ReserveMB int64  `json:"reserve_mb"`
	TotalMB   int64  `json:"total_mb"`
	// Samples and Since: the history the forecast rests on.
	Samples int       `json:"samples"`
	Since   time.Time `json:"since,omitzero"`
	// GrowthMBPerDay is how fast the PS's store takes space (positive)
	// or gives it back (negative), in MiB a day.
	GrowthMBPerDay float64 `json:"growth_mb_per_day"`
	// State: "filling" (DaysLeft and FullAt say when it reaches the
	// reserve), "under-reserve" (it is there already), "steady" (not
	// filling), "unknown" (too little history: Reason says why).
	State    string    `json:"state"`
	DaysLeft float64   `json:"days_left,omitempty"`
	FullAt   time.Time `json:"full_at,omitzero"`
	Reason   string    `json:"reason,omitempty"`
	// Alert is set when DaysLeft is under the NS's horizon (or the volume
	// is under its reserve).
	Alert bool `json:"alert,omitempty"`
}

// Forecast states (VolumeForecast.State).
const (
	ForecastFilling      = "filling"
	ForecastUnderReserve = "under-reserve"
	ForecastSteady       = "steady"
	ForecastUnknown      = "unknown"
)
