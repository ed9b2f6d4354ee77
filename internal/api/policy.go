package api

import "time"

// Policy kinds, as they appear in routes (/policies/{kind}).
const (
	PolicyPackageServer = "package-server"
	PolicySiteServer    = "site-server"
)

// LocationDefault is the value of a storage location that means the
// Package Server's default location, <install dir>/Package Delivery.
const LocationDefault = "default"

// Relocation modes (SPEC §6.4).
const (
	RelocationOnline    = "online"
	RelocationExclusive = "exclusive"
)

// PackageServerSettings is the Package Server Settings policy. In a global
// policy every field is set; in a per-server override only the overridden
// ones are, and the others inherit. A PUT changes the fields it sets and
// leaves the others as they were.
type PackageServerSettings struct {
	// LinuxLocation is the primary file storage location of Linux Package
	// Servers: "default" or an absolute path.
	LinuxLocation *string `json:"linux_location,omitempty"`
	// WindowsLocation is that of Windows Package Servers: "default" or an
	// absolute path such as E:\Store\PS-packages.
	WindowsLocation *string `json:"windows_location,omitempty"`
	// AllFixedDrives allows storing packages on other fixed drives when the
	// primary one runs low (rotation).
	AllFixedDrives *bool `json:"all_fixed_drives,omitempty"`
	// RelocationMode is "online" (keep serving) or "exclusive".
	RelocationMode *string `json:"relocation_mode,omitempty"`
}

// SiteServerSettings is the Global Site Server Settings policy, with the
// same inheritance rules as PackageServerSettings.
type SiteServerSettings struct {
	// PollIntervalSeconds is how long a config long-poll waits, 1 to 300.
	PollIntervalSeconds *int `json:"poll_interval_seconds,omitempty"`
	// DownloadConcurrency is how many package files a PS downloads at once,
	// 1 to 64.
	DownloadConcurrency *int `json:"download_concurrency,omitempty"`
	// DownloadBandwidth limits a PS's downloads from the NS, in bytes per
	// second; 0 means no limit.
	DownloadBandwidth *int64 `json:"download_bandwidth,omitempty"`
}

// PackageServerPolicy is a stored Package Server Settings policy (global or
// override) with its version, which changes on every edit.
type PackageServerPolicy struct {
	Server    string                `json:"server,omitempty"` // empty for the global policy
	Version   int64                 `json:"version"`
	UpdatedAt time.Time             `json:"updated_at,omitzero"`
	Settings  PackageServerSettings `json:"settings"`
}

// SiteServerPolicy is a stored Global Site Server Settings policy.
type SiteServerPolicy struct {
	Server    string             `json:"server,omitempty"`
	Version   int64              `json:"version"`
	UpdatedAt time.Time          `json:"updated_at,omitzero"`
	Settings  SiteServerSettings `json:"settings"`
}

// EffectivePolicy is what one Package Server runs with: the global policies
// with its overrides applied. Every field is set. Overridden lists the
// fields (JSON names) that come from the server's overrides.
type EffectivePolicy struct {
	Server        string                `json:"server"`
	OS            string                `json:"os"`
	PackageServer PackageServerSettings `json:"package_server"`
	SiteServer    SiteServerSettings    `json:"site_server"`
	Overridden    []string              `json:"overridden,omitempty"`
}
