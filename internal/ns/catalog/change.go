package catalog

import (
	"context"

	"github.com/wharf-project/wharf/internal/wharf"
)

// Part names what a Change changed.
type Part string

// Parts of the catalog a change may touch.
const (
	// PartPackages: a package was created or deleted (Package names it;
	// empty: reload every package). Server is "".
	PartPackages Part = "packages"
	// PartPolicies: the global policies (Server "") or a server's
	// overrides changed.
	PartPolicies Part = "policies"
	// PartServer: a server was enrolled, removed, or its record (its
	// credential, its URL) changed: every NS reloads it, so a removed
	// server's or a replaced credential stops working at once everywhere.
	PartServer Part = "server"
	// PartTasks: a server's pending tasks changed (one created or done).
	PartTasks Part = "tasks"
	// PartClients: a client token was revoked: every NS forgets the
	// client tokens it has checked, so the token stops working at once.
	PartClients Part = "clients"
	// PartAdmin: the admin token was replaced: every NS forgets the hash
	// it keeps of the old one.
	PartAdmin Part = "admin"
	// PartAll: anything may have changed (a notifier that reconnected and
	// may have missed changes says so): reload everything.
	PartAll Part = "all"
)

// Change says what a committed write changed, so that every NS process on
// the store updates what it keeps in memory and wakes the long polls whose
// configuration it changed, and only those.
type Change struct {
	Part    Part             `json:"part"`
	Server  wharf.ServerName `json:"server,omitempty"`  // the one server concerned; "" for all
	Package wharf.PackageID  `json:"package,omitempty"` // the package created or deleted (PartPackages)
	// Origin names the catalog that made the change; a catalog ignores its
	// own changes when they come back through the notifier (it applied
	// them before announcing them).
	Origin string `json:"origin,omitempty"`
}

// Notifier carries changes between the NS processes that share a store
// (package notify in one process; PostgreSQL LISTEN/NOTIFY between
// replicas). Implementations are safe for concurrent use.
type Notifier interface {
	// Notify announces c, after its write committed, to every catalog
	// listening on the store, this one's included.
	Notify(ctx context.Context, c Change) error
	// Listen calls fn with every change announced, in order, from one
	// goroutine, until ctx ends; then it returns ctx's error. When changes
	// may have been lost (the connection that carries them was lost) it
	// calls fn with a Change of PartAll once it listens again.
	Listen(ctx context.Context, fn func(Change)) error
}
