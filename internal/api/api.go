// Package api defines the JSON wire types of Wharf's HTTP API, shared by the
// Notification Server, the Package Servers, the CLI and the client. It is
// version 1 of the API: every route lives under /api/v1. The routes and
// their rules are listed in docs/api.md.
//
// Types here carry data only; validation lives with the code that receives
// them (the NS catalog, the PS), since only the receiver knows its rules.
package api

import "time"

// Prefix is the path prefix of every API route.
const Prefix = "/api/v1"

// Error is the body of every error response: 4xx or 5xx with a one-line,
// lowercase message that names what was wrong.
type Error struct {
	Error string `json:"error"`
}

// File is one file of a package: its path relative to the package root (with
// '/' separators), size in bytes and the lowercase hex SHA-256 of its bytes.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Assignment says which Package Servers keep a package: all of them, or the
// named ones. Exactly one of the two is set.
type Assignment struct {
	All     bool     `json:"all,omitempty"`
	Servers []string `json:"servers,omitempty"`
}

// PackageManifest is the body of POST /packages: what an administrator
// publishes. Every file's content must have been uploaded as a blob first.
type PackageManifest struct {
	Name           string     `json:"name"`
	Version        string     `json:"version"`
	Files          []File     `json:"files"`
	Assignment     Assignment `json:"assignment"`
	CustomLocation string     `json:"custom_location,omitempty"`
	// Public packages need no credential: their manifest and codebases
	// are readable without a token, and Package Servers serve them to
	// anybody (for bootstrapping machines). Every other package is
	// signed: readable with a client token or the admin token, and
	// downloadable from a Package Server only through the signed URLs the
	// NS hands out with its codebases. Signed is the default and may be
	// set for clarity; setting both is refused.
	Public bool `json:"public,omitempty"`
	Signed bool `json:"signed,omitempty"`
}

// PackageSummary describes a package without its file list.
type PackageSummary struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Version        string     `json:"version"`
	Size           int64      `json:"size"`
	FileCount      int        `json:"file_count"`
	Assignment     Assignment `json:"assignment"`
	CustomLocation string     `json:"custom_location,omitempty"`
	// Public is !Signed (see PackageManifest); Package Servers read
	// Signed.
	Public    bool      `json:"public,omitempty"`
	Signed    bool      `json:"signed,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Package is a package with its files and, on the admin API, the state each
// Package Server reported for it.
type Package struct {
	PackageSummary
	Files  []File         `json:"files"`
	States []PackageState `json:"states,omitempty"`
}

// PackageList is the body of GET /packages.
type PackageList struct {
	Packages []PackageSummary `json:"packages"`
	// Total counts the packages that match (all pages), TotalBytes adds up
	// their sizes.
	Total      int   `json:"total"`
	TotalBytes int64 `json:"total_bytes"`
}

// Package states a Package Server reports.
const (
	StateDownloading = "downloading"
	StateReady       = "ready"
	StateFailed      = "failed"
	// StateUnavailable: the PS has the package but cannot serve it now, for
	// example because the volume holding it is not mounted.
	StateUnavailable = "unavailable"
)

// PackageState is one Package Server's state for one package.
type PackageState struct {
	Server    string `json:"server,omitempty"`
	PackageID string `json:"package_id"`
	// Name and Version of the package, filled by the NS in GET
	// /servers/{name} (a Package Server reports ids only).
	Name      string    `json:"name,omitempty"`
	Version   string    `json:"version,omitempty"`
	State     string    `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Path      string    `json:"path,omitempty"` // where the PS keeps it
	UpdatedAt time.Time `json:"updated_at,omitempty"`
}

// EnrollToken is the answer to POST /enroll-tokens.
type EnrollToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Server describes an enrolled Package Server.
type Server struct {
	Name        string    `json:"name"`
	OS          string    `json:"os"`
	URL         string    `json:"url"`
	EnrolledAt  time.Time `json:"enrolled_at"`
	LastContact time.Time `json:"last_contact,omitzero"`
	// StoragePath is where the server keeps its packages now (the storage
	// path in effect; after a refused attempt, still the old one); empty
	// while it has not reported one: its default location.
	StoragePath string `json:"storage_path,omitempty"`
	// Packages is a page of the states the server reported, by package
	// id (GET /servers/{name}?limit=&offset=; none in GET /servers).
	Packages []PackageState `json:"packages,omitempty"`
	// PackageCounts counts every state the server reported, by state,
	// and PackagesTotal is their sum (GET /servers/{name}).
	PackageCounts map[string]int `json:"package_counts,omitempty"`
	PackagesTotal int            `json:"packages_total,omitempty"`
	// LocationStatus is the latest Package Location Status event (basic
	// inventory), when the server sent one; in GET /servers without its
	// per-package rows.
	LocationStatus *LocationStatus `json:"location_status,omitempty"`
	// Health is the latest link audit and the volumes with their
	// capacity forecast (GET /servers/{name}), when the server reported
	// them.
	Health *ServerHealth `json:"health,omitempty"`
}

// DefaultServerPackages is how many package states GET /servers/{name}
// answers when not told.
const DefaultServerPackages = 1000

// ServerList is the body of GET /servers.
type ServerList struct {
	Servers []Server `json:"servers"`
}

// Codebase is one place a package can be downloaded from: fetch a file as
// URL + escaped relative path, with Query appended when it is not empty (it
// carries the expiry and signature of a signed package).
type Codebase struct {
	Server string `json:"server"`
	URL    string `json:"url"`
	Query  string `json:"query,omitempty"`
}

// Codebases is the body of GET /packages/{id}/codebases.
type Codebases struct {
	PackageID string     `json:"package_id"`
	Codebases []Codebase `json:"codebases"`
}

// EnrollRequest is the body of POST /agent/enroll: a Package Server trades a
// one-time enrollment token for its own credential.
type EnrollRequest struct {
	Token string `json:"token"`
	Name  string `json:"name"`
	OS    string `json:"os"`  // "linux" or "windows"
	URL   string `json:"url"` // base URL clients download from, e.g. http://ps1:8081
}

// Enrollment is the answer to POST /agent/enroll. The credential authenticates
// every later agent call (Authorization: Bearer); the signing key checks the
// signatures of signed package URLs.
type Enrollment struct {
	Name       string `json:"name"`
	Credential string `json:"credential"`
	SigningKey string `json:"signing_key"` // hex
}

// AgentConfig is what a Package Server receives from GET
// /agent/{name}/config: the packages assigned to it and its settings. The
// response carries an ETag; the PS sends it back in If-None-Match.
type AgentConfig struct {
	Server   string           `json:"server"`
	Packages []PackageSummary `json:"packages"`
	Settings AgentSettings    `json:"settings"`
	// Tasks are server tasks waiting for the PS; it answers each with POST
	// /agent/{name}/tasks/{id}/result.
	Tasks []Task `json:"tasks,omitempty"`
}

// AgentSettings are the effective settings of one Package Server: its
// effective policies (see EffectivePolicy), resolved for its OS.
type AgentSettings struct {
	PollWaitSeconds     int `json:"poll_wait_seconds"`
	DownloadConcurrency int `json:"download_concurrency"`
	// DownloadBandwidth limits downloads from the NS in bytes per second;
	// 0 means no limit.
	DownloadBandwidth int64 `json:"download_bandwidth"`
	// StorageLocation is the primary file storage location for the PS's OS:
	// "default" or an absolute path.
	StorageLocation string `json:"storage_location"`
	// AllFixedDrives allows rotation onto other fixed drives.
	AllFixedDrives bool `json:"all_fixed_drives"`
	// RelocationMode is "online" or "exclusive".
	RelocationMode string `json:"relocation_mode"`
}

// PackageStates is the body of POST /agent/{name}/package-states.
type PackageStates struct {
	States []PackageState `json:"states"`
}

// PollStats counts the long polls of one NS process (GET /stats; a replica
// answers for itself): the fleet simulator reads them to tell how many
// polls a change woke.
type PollStats struct {
	// Waiting is the number of polls waiting for a change now.
	Waiting int64 `json:"waiting"`
	// Wakes counts the polls a change of their configuration woke, since
	// the process started.
	Wakes int64 `json:"wakes"`
	// Loads counts the store reads made to build configurations (a full
	// load, the shared parts, or one server's), since the process started.
	Loads int64 `json:"loads"`
}

// ClientTokenRequest is the body of POST /client-tokens.
type ClientTokenRequest struct {
	Name string `json:"name"`
}

// ClientToken is a client token: a read-only credential of the machines
// that download packages (wharf get). Token is set only in the answer to
// its creation; the NS keeps its hash alone.
type ClientToken struct {
	Name      string    `json:"name"`
	Token     string    `json:"token,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ClientTokenList is the body of GET /client-tokens.
type ClientTokenList struct {
	Tokens []ClientToken `json:"tokens"`
}

// AdminToken is the answer to POST /admin-token: the new admin token,
// shown once.
type AdminToken struct {
	Token string `json:"token"`
}

// CredentialRotation is the body of POST /agent/{name}/credential: the
// credential a Package Server chose to replace its own (at least 32
// random bytes, "wharf-ps-" and base64url), and the rotate-credential
// task it answers, if any. The old credential stops working as the NS
// answers 204.
type CredentialRotation struct {
	Credential string `json:"credential"`
	TaskID     string `json:"task_id,omitempty"`
}
