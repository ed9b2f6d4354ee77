package catalog

import (
	"context"
	"time"

	"github.com/wharf-project/wharf/internal/wharf"
)

// Package is a published package as the catalog stores it. Packages are
// immutable once created: a new version is a new package.
type Package struct {
	ID             wharf.PackageID
	Name           string
	Version        string
	Files          []wharf.File // sorted by Path; empty in listings
	Size           int64        // sum of file sizes
	FileCount      int
	AssignAll      bool
	Servers        []wharf.ServerName // when !AssignAll; sorted
	CustomLocation string
	// Signed: downloads from a Package Server need the signed URL the NS
	// hands to a client allowed to read (a client token or the admin).
	// A package that is not signed is public: anybody may read it, on the
	// NS and on the Package Servers, with no credential.
	Signed    bool
	CreatedAt time.Time
}

// Server is an enrolled Package Server.
type Server struct {
	Name           wharf.ServerName
	OS             string
	URL            string
	CredentialHash string // hex SHA-256 of the credential; the credential itself is never stored
	SigningKey     []byte // shared with the PS to sign package URLs
	EnrolledAt     time.Time
	LastContact    time.Time // zero until the first call after enrollment
}

// PackageState is what one server reported about one package.
type PackageState struct {
	Server    wharf.ServerName
	PackageID wharf.PackageID
	State     string
	Reason    string
	Path      string
	UpdatedAt time.Time
}

// PackageFilter narrows ListPackages. Zero fields match everything.
type PackageFilter struct {
	Name    string
	Version string
	// PublicOnly keeps public packages only (those not Signed).
	PublicOnly bool
	// AssignedTo keeps packages assigned to all servers or naming this one.
	AssignedTo wharf.ServerName
	// Query keeps packages where each of its words is in the name, the
	// version or the id, ignoring case (ASCII).
	Query string
	// IDs keeps these packages only (none when set and empty is not
	// possible: nil means no filter).
	IDs []wharf.PackageID
	// Offset skips that many packages of the order; Limit, when above 0,
	// returns at most that many (a page, done in SQL).
	Offset, Limit int
}

// StateFilter narrows PackageStates. Zero fields match everything.
type StateFilter struct {
	Server    wharf.ServerName
	PackageID wharf.PackageID
	// Offset and Limit (when above 0) make a page of the order.
	Offset, Limit int
}

// PackageTotals is the number and bytes of the packages a filter matches.
type PackageTotals struct {
	Count int
	Bytes int64
}

// The catalog's state is kept by a store; each interface below is the part
// of it one area of the catalog uses. Implementations must be safe for
// concurrent use. Methods return errors wrapping wharf.ErrNotFound when the
// named item does not exist and wharf.ErrExists when a create collides;
// every other error is a failure of the store itself.

// PackageStore keeps packages, their files and assignments, and the states
// servers report of them.
type PackageStore interface {
	// CreatePackage stores p with its files and assignment in one
	// transaction. It fails with ErrExists when a package of the same name
	// and version exists.
	CreatePackage(ctx context.Context, p Package) error
	// Package returns the package with its files sorted by path.
	Package(ctx context.Context, id wharf.PackageID) (Package, error)
	// ListPackages returns matching packages without their files, ordered by
	// name, then creation time.
	ListPackages(ctx context.Context, f PackageFilter) ([]Package, error)
	// DeletePackage removes the package, its files and every state reported
	// for it.
	DeletePackage(ctx context.Context, id wharf.PackageID) error
	// BlobInUse reports whether a package assigned to server lists a file
	// with this digest (every package, when server is empty).
	BlobInUse(ctx context.Context, d wharf.Digest, server wharf.ServerName) (bool, error)

	// PutPackageStates upserts the states (keyed by server and package) in
	// one transaction. States for packages that do not exist are dropped.
	PutPackageStates(ctx context.Context, states []PackageState) error
	// PackageStates returns matching states ordered by server, then package.
	PackageStates(ctx context.Context, f StateFilter) ([]PackageState, error)
	// CountPackages counts the packages f matches (Offset and Limit
	// aside) and adds up their sizes, in SQL.
	CountPackages(ctx context.Context, f PackageFilter) (PackageTotals, error)
	// CountStates counts the states f matches by state (Offset and Limit
	// aside), in SQL.
	CountStates(ctx context.Context, f StateFilter) (map[string]int, error)

	// LockBlobs waits until the caller holds the lock that orders package
	// creation against blob garbage collection in every NS process sharing
	// the store (on PostgreSQL, an advisory lock), or ctx ends. The caller
	// calls unlock exactly once.
	LockBlobs(ctx context.Context) (unlock func(), err error)
}

// SettingStore keeps the NS's own settings (the admin token's hash).
type SettingStore interface {
	// Setting returns a value stored with InitSetting, or ErrNotFound.
	Setting(ctx context.Context, key string) (string, error)
	// InitSetting stores value under key unless the key has a value already;
	// it reports whether it stored it.
	InitSetting(ctx context.Context, key, value string) (bool, error)
	// SetSetting stores value under key, replacing any value.
	SetSetting(ctx context.Context, key, value string) error
}

// ServerStore keeps enrollment tokens and enrolled Package Servers.
type ServerStore interface {
	// CreateEnrollToken stores the hash of a one-time enrollment token.
	CreateEnrollToken(ctx context.Context, hash string, expires time.Time) error
	// ConsumeEnrollToken atomically marks the token used. It fails with
	// ErrNotFound when the token is unknown, already used or expired at now.
	ConsumeEnrollToken(ctx context.Context, hash string, now time.Time) error

	// CreateServer enrolls s; ErrExists when the name is taken.
	CreateServer(ctx context.Context, s Server) error
	Server(ctx context.Context, name wharf.ServerName) (Server, error)
	ServerByCredential(ctx context.Context, hash string) (Server, error)
	// ListServers returns every server ordered by name.
	ListServers(ctx context.Context) ([]Server, error)
	// TouchServer records a contact from the server at the given time.
	TouchServer(ctx context.Context, name wharf.ServerName, at time.Time) error
	// TouchServers records the contacts of many servers in one
	// transaction. Like TouchServer, a contact older than the one stored
	// leaves it; servers that do not exist are skipped.
	TouchServers(ctx context.Context, contacts map[wharf.ServerName]time.Time) error
	// DeleteServer removes a server with its package states, overrides,
	// tasks and location events, in one transaction; ErrNotFound when
	// there is none.
	DeleteServer(ctx context.Context, name wharf.ServerName) error
	// SetServerCredential replaces the credential hash of a server whose
	// hash is still oldHash; ErrConflict when it is not (any more),
	// ErrNotFound when there is no such server.
	SetServerCredential(ctx context.Context, name wharf.ServerName, oldHash, newHash string) error
	// SetServerURL records a server's base URL; ErrNotFound when there is
	// no such server.
	SetServerURL(ctx context.Context, name wharf.ServerName, url string) error
}

// ClientStore keeps the client tokens (only their hashes).
type ClientStore interface {
	// CreateClientToken stores a new token; ErrExists when its name (or
	// hash) is taken.
	CreateClientToken(ctx context.Context, t ClientToken) error
	// ClientTokenByHash returns the token with this hash, or ErrNotFound.
	ClientTokenByHash(ctx context.Context, hash string) (ClientToken, error)
	// ListClientTokens returns every token ordered by name.
	ListClientTokens(ctx context.Context) ([]ClientToken, error)
	// DeleteClientToken removes a token; ErrNotFound for an unknown name.
	DeleteClientToken(ctx context.Context, name string) error
}

// PolicyStore keeps the global policies and the servers' overrides.
type PolicyStore interface {
	// Policy returns the policy of a kind for a server, or the global one
	// for server "", or an error wrapping ErrNotFound.
	Policy(ctx context.Context, server wharf.ServerName, kind string) (PolicyRecord, error)
	// PutPolicy stores data when the stored version is expectVersion (0:
	// none stored yet) and returns the record with the version one higher;
	// ErrConflict when another writer changed it first.
	PutPolicy(ctx context.Context, server wharf.ServerName, kind, data string, expectVersion int64, at time.Time) (PolicyRecord, error)
	// DeletePolicy removes a policy; ErrNotFound when there is none.
	DeletePolicy(ctx context.Context, server wharf.ServerName, kind string) error
	// ListPolicies returns every stored policy, global ones and overrides,
	// ordered by server, then kind.
	ListPolicies(ctx context.Context) ([]PolicyRecord, error)
}

// LocationStore keeps Package Location Status events and alerts.
type LocationStore interface {
	// PutLocationEvent stores a Package Location Status event (JSON) as the
	// server's latest; with history it is also appended to the history.
	PutLocationEvent(ctx context.Context, server wharf.ServerName, at time.Time, data string, history bool) error
	// LatestLocationEvent returns the latest event, or ErrNotFound.
	LatestLocationEvent(ctx context.Context, server wharf.ServerName) (LocationEvent, error)
	// LocationHistory returns up to limit events of the history, newest
	// first.
	LocationHistory(ctx context.Context, server wharf.ServerName, limit int) ([]LocationEvent, error)

	// RaiseAlert stores a new alert, unless an unread alert has the same
	// Fingerprint: then that one's Count grows by one and its LastSeenAt
	// becomes a's CreatedAt (atomically, whoever raises it). It returns the
	// alert as stored.
	RaiseAlert(ctx context.Context, a Alert) (Alert, error)
	// ListAlerts returns up to limit alerts, the last seen first; only
	// unread ones when unreadOnly.
	ListAlerts(ctx context.Context, unreadOnly bool, limit int) ([]Alert, error)
	// RepeatAlert counts one more occurrence of the unread alert with this
	// fingerprint (Count grows, LastSeenAt becomes at) and returns it;
	// ErrNotFound when no unread alert has it.
	RepeatAlert(ctx context.Context, fingerprint string, at time.Time) (Alert, error)
	// CountAlertsSince counts the alerts of a server created at since or
	// later, read or not.
	CountAlertsSince(ctx context.Context, server wharf.ServerName, since time.Time) (int, error)
	// CountUnreadAlerts counts the unread alerts by level.
	CountUnreadAlerts(ctx context.Context) (map[string]int, error)
	// MarkAlertRead marks an alert read at the given time (once; later
	// calls keep the first time); ErrNotFound for an unknown id.
	MarkAlertRead(ctx context.Context, id string, at time.Time) error
	// MarkAllAlertsRead marks every unread alert read at the given time
	// and returns how many it marked.
	MarkAllAlertsRead(ctx context.Context, at time.Time) (int, error)
}

// HealthStore keeps the servers' health reports and the volume samples the
// capacity forecast is drawn from.
type HealthStore interface {
	// PutHealth stores data (the JSON of api.ServerHealth) as the
	// server's latest.
	PutHealth(ctx context.Context, server wharf.ServerName, at time.Time, data string) error
	// Health returns the server's latest, or ErrNotFound.
	Health(ctx context.Context, server wharf.ServerName) (HealthRecord, error)
	// ListHealth returns every server's latest, ordered by server.
	ListHealth(ctx context.Context) ([]HealthRecord, error)
	// AddVolumeSamples stores samples of the server's volumes (one at the
	// same volume and time replaces the one there) and removes the
	// server's samples older than before, in one transaction.
	AddVolumeSamples(ctx context.Context, server wharf.ServerName, samples []VolumeSample, before time.Time) error
	// VolumeSamples returns the newest limit samples of a volume taken at
	// since or later, oldest first.
	VolumeSamples(ctx context.Context, server wharf.ServerName, volume string, since time.Time, limit int) ([]VolumeSample, error)
}

// TaskStore keeps server tasks.
type TaskStore interface {
	// CreateTask stores a new server task.
	CreateTask(ctx context.Context, t Task) error
	// PendingTasks returns the server's tasks not done yet, oldest first;
	// every server's (ordered by server first) when server is "".
	PendingTasks(ctx context.Context, server wharf.ServerName) ([]Task, error)
	// Task returns one task of the server, or ErrNotFound.
	Task(ctx context.Context, server wharf.ServerName, id string) (Task, error)
	// CompleteTask records the result of a pending task; ErrNotFound when
	// the server has no such pending task.
	CompleteTask(ctx context.Context, server wharf.ServerName, id, result string, at time.Time) error
}

// UserStore keeps the console users; Users is its only consumer.
type UserStore interface {
	// CreateUser stores a new console user; ErrExists when the name is
	// taken. Names are stored as given (the catalog lowercases them).
	CreateUser(ctx context.Context, u User) error
	// User returns a console user, or ErrNotFound.
	User(ctx context.Context, name string) (User, error)
	// ListUsers returns every console user ordered by name.
	ListUsers(ctx context.Context) ([]User, error)
	// SetUserPassword replaces a user's password hash; ErrNotFound for an
	// unknown user.
	SetUserPassword(ctx context.Context, name, hash string, at time.Time) error
	// DeleteUser removes a user; ErrNotFound for an unknown user.
	DeleteUser(ctx context.Context, name string) error
}

// Store is every part the Catalog uses, as one value (the SQL store
// implements all of them). Each area of the catalog holds only its part.
type Store interface {
	PackageStore
	SettingStore
	ServerStore
	PolicyStore
	LocationStore
	TaskStore
	HealthStore
	ClientStore
}

// ClientToken is a client token as stored: its name and the hex SHA-256 of
// the token (the token itself is never stored).
type ClientToken struct {
	Name      string
	Hash      string
	CreatedAt time.Time
}

// LocationEvent is a stored Package Location Status event.
type LocationEvent struct {
	Server     wharf.ServerName
	ReceivedAt time.Time
	Data       string // JSON of api.LocationStatus
}

// Alert is a stored alert.
type Alert struct {
	ID        string
	Server    wharf.ServerName
	Level     string
	Message   string
	CreatedAt time.Time
	ReadAt    time.Time // zero while unread
	// Fingerprint identifies repeats: an alert raised while an unread one
	// has the same fingerprint counts as a repeat of it.
	Fingerprint string
	// Count is how often it was raised (1 and more), LastSeenAt the last
	// time.
	Count      int
	LastSeenAt time.Time
}

// HealthRecord is a server's stored health.
type HealthRecord struct {
	Server     wharf.ServerName
	ReceivedAt time.Time
	Data       string // JSON of api.ServerHealth
}

// VolumeSample is the space of one volume of a server at one time, in
// MiB; ReserveMB is -1 when the sample did not say.
type VolumeSample struct {
	Volume                             string
	At                                 time.Time
	TotalMB, FreeMB, UsedMB, ReserveMB int64
}

// Task is a stored server task.
type Task struct {
	ID        string
	Server    wharf.ServerName
	Type      string
	Args      string // JSON of the task's arguments
	CreatedAt time.Time
	DoneAt    time.Time // zero while pending
	Result    string    // JSON of api.TaskResult once done
}

// PolicyRecord is a stored policy: the global one (Server "") or a
// server's override, as the JSON of its settings.
type PolicyRecord struct {
	Server    wharf.ServerName
	Kind      string
	Data      string
	Version   int64
	UpdatedAt time.Time
}
