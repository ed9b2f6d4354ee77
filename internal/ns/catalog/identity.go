package catalog

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Who may do what (docs/api.md, "Authentication"): the NS, not a client,
// decides it from the token a request carries.
//
//   - the admin token ("wharf-admin-..."): everything an administrator
//     does;
//   - a Package Server credential ("wharf-ps-..."): the agent routes of its
//     own server, and the blobs of packages assigned to it;
//   - a client token ("wharf-client-..."): read only — list packages, read
//     a manifest, resolve codebases (signed URLs for the Package Servers);
//   - no token: the same reads, of public packages only.
//
// Every credential is kept as a hash and checked against memory; a change
// (a token revoked, a server removed, a credential or the admin token
// replaced) is announced to every NS on the store, which forgets what it
// knew at once.

// Role is what the bearer of a token may do.
type Role int

// Roles, from the least to the most trusted.
const (
	RoleAnonymous Role = iota
	RoleClient
	RoleServer
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleServer:
		return "server"
	case RoleAdmin:
		return "admin"
	}
	return "anonymous"
}

// Principal is who a request comes from.
type Principal struct {
	Role   Role
	Client string // RoleClient: the token's name
	Server Server // RoleServer: the server
}

// Token prefixes: they say which kind of credential a token is, so it is
// checked against one table only.
const (
	adminPrefix  = "wharf-admin-"
	serverPrefix = "wharf-ps-"
	clientPrefix = "wharf-client-"
)

// Authenticate returns who holds token: anonymous for no token, else the
// admin, a Package Server or a client; a token that is none of them is an
// error wrapping wharf.ErrUnauthorized.
func (c *Catalog) Authenticate(ctx context.Context, token string) (Principal, error) {
	switch {
	case token == "":
		return Principal{Role: RoleAnonymous}, nil
	case strings.HasPrefix(token, serverPrefix):
		s, err := c.AuthenticateServer(ctx, token)
		if err != nil {
			return Principal{}, err
		}
		return Principal{Role: RoleServer, Server: s}, nil
	case strings.HasPrefix(token, clientPrefix):
		name, err := c.checkClient(ctx, token)
		if err != nil {
			return Principal{}, err
		}
		return Principal{Role: RoleClient, Client: name}, nil
	}
	if err := c.CheckAdminToken(ctx, token); err != nil {
		if strings.HasPrefix(token, adminPrefix) || !errors.Is(err, wharf.ErrUnauthorized) {
			return Principal{}, err
		}
		return Principal{}, wharf.Errorf(wharf.ErrUnauthorized, "unknown token: not the admin token, a client token or a package server credential")
	}
	return Principal{Role: RoleAdmin}, nil
}

// ---- the admin token

// CheckAdminToken returns nil when token is the admin token and an error
// wrapping wharf.ErrUnauthorized otherwise. The hash is read from the
// store once and kept until a change says the token was replaced.
func (c *Catalog) CheckAdminToken(ctx context.Context, token string) error {
	c.adminMu.Lock()
	want, gen := c.adminHash, c.adminGen
	c.adminMu.Unlock()
	if want == nil {
		h, err := c.settings.Setting(ctx, adminTokenKey)
		if err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
		want, err = hex.DecodeString(h)
		if err != nil {
			return fmt.Errorf("admin token hash in store is corrupt: %w", err)
		}
		c.adminMu.Lock()
		if c.adminGen == gen { // not replaced while it was read
			c.adminHash = want
		}
		c.adminMu.Unlock()
	}
	got := sha256.Sum256([]byte(token))
	if token == "" || subtle.ConstantTimeCompare(got[:], want) != 1 {
		return wharf.Errorf(wharf.ErrUnauthorized, "wrong admin token")
	}
	return nil
}

// forgetAdmin drops the admin token's hash kept in memory.
func (c *Catalog) forgetAdmin() {
	c.adminMu.Lock()
	c.adminHash = nil
	c.adminGen++
	c.adminMu.Unlock()
}

// RotateAdminToken replaces the admin token by a new one and returns it
// (shown once: only its hash is kept). The old token stops working on
// every NS on the store at once.
func (c *Catalog) RotateAdminToken(ctx context.Context) (string, error) {
	tok := newSecret(adminPrefix)
	if err := c.settings.SetSetting(ctx, adminTokenKey, hashSecret(tok)); err != nil {
		return "", err
	}
	c.changed(ctx, Change{Part: PartAdmin})
	return tok, nil
}

// ---- client tokens

// clientCache keeps the client tokens this NS checked: hash → name. A
// change of PartClients empties it; gen keeps a lookup that raced the
// change from putting a revoked token back.
type clientCache struct {
	mu     sync.Mutex
	gen    uint64
	byHash map[string]string
}

// maxCachedClients bounds the cache; past it, it starts again empty.
const maxCachedClients = 100_000

func (cc *clientCache) get(hash string) (name string, gen uint64, ok bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	name, ok = cc.byHash[hash]
	return name, cc.gen, ok
}

func (cc *clientCache) put(hash, name string, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen {
		return
	}
	if cc.byHash == nil || len(cc.byHash) >= maxCachedClients {
		cc.byHash = map[string]string{}
	}
	cc.byHash[hash] = name
}

func (cc *clientCache) forget() {
	cc.mu.Lock()
	cc.byHash = nil
	cc.gen++
	cc.mu.Unlock()
}

// checkClient returns the name of the client token token, or an error
// wrapping wharf.ErrUnauthorized.
func (c *Catalog) checkClient(ctx context.Context, token string) (string, error) {
	h := hashSecret(token)
	name, gen, ok := c.clients.get(h)
	if ok {
		return name, nil
	}
	t, err := c.clientStore.ClientTokenByHash(ctx, h)
	if errors.Is(err, wharf.ErrNotFound) {
		return "", wharf.Errorf(wharf.ErrUnauthorized, "unknown or revoked client token")
	}
	if err != nil {
		return "", err
	}
	c.clients.put(h, t.Name, gen)
	return t.Name, nil
}

// ParseClientName checks a client token's name: the rules of a server
// name (1 to 63 letters, digits, '-', '_', '.'), lowercased.
func ParseClientName(s string) (string, error) {
	n, err := wharf.ParseServerName(s)
	if err != nil {
		return "", wharf.Errorf(wharf.ErrInvalid, "client token name: %s", strings.TrimPrefix(err.Error(), "invalid server name "))
	}
	return string(n), nil
}

// CreateClientToken makes a new client token named name and returns it
// with the token (shown once; only its hash is kept).
func (c *Catalog) CreateClientToken(ctx context.Context, name string) (api.ClientToken, error) {
	n, err := ParseClientName(name)
	if err != nil {
		return api.ClientToken{}, err
	}
	tok := newSecret(clientPrefix)
	t := ClientToken{Name: n, Hash: hashSecret(tok), CreatedAt: c.now().UTC().Truncate(time.Microsecond)}
	if err := c.clientStore.CreateClientToken(ctx, t); err != nil {
		return api.ClientToken{}, err
	}
	return api.ClientToken{Name: t.Name, Token: tok, CreatedAt: t.CreatedAt}, nil
}

// ListClientTokens lists the client tokens, without the tokens.
func (c *Catalog) ListClientTokens(ctx context.Context) (api.ClientTokenList, error) {
	list, err := c.clientStore.ListClientTokens(ctx)
	if err != nil {
		return api.ClientTokenList{}, err
	}
	out := api.ClientTokenList{Tokens: make([]api.ClientToken, 0, len(list))}
	for _, t := range list {
		out.Tokens = append(out.Tokens, api.ClientToken{Name: t.Name, CreatedAt: t.CreatedAt})
	}
	return out, nil
}

// RevokeClientToken removes a client token; it stops working on every NS
// on the store at once.
func (c *Catalog) RevokeClientToken(ctx context.Context, name string) error {
	n, err := ParseClientName(name)
	if err != nil {
		return fmt.Errorf("client token %q: %w", name, wharf.ErrNotFound)
	}
	if err := c.clientStore.DeleteClientToken(ctx, n); err != nil {
		return err
	}
	c.changed(ctx, Change{Part: PartClients})
	return nil
}

// ---- Package Servers

// RemoveServer removes an enrolled server with what it reported: its
// credential stops working on every NS at once, its long poll ends (401),
// and its codebases are no longer handed out.
func (c *Catalog) RemoveServer(ctx context.Context, name string) error {
	n, err := wharf.ParseServerName(name)
	if err != nil {
		return fmt.Errorf("%v: %w", err, wharf.ErrNotFound)
	}
	if err := c.servers.DeleteServer(ctx, n); err != nil {
		return err
	}
	c.changed(ctx, Change{Part: PartServer, Server: n})
	return nil
}

// RequestCredentialRotation asks a server to replace its credential: a
// rotate-credential task it gets with its next configuration (its long
// poll wakes at once).
func (c *Catalog) RequestCredentialRotation(ctx context.Context, name string) (api.Task, error) {
	return c.CreateTask(ctx, name, api.TaskRequest{Type: api.TaskRotateCredential})
}

// minCredentialBytes is the least randomness a credential a server picks
// must carry.
const minCredentialBytes = 32

// RotateServerCredential replaces the credential of server s by the one it
// sent (r.Credential, which it keeps already), and completes the
// rotate-credential task r names. The old credential stops working on
// every NS at once.
func (c *Catalog) RotateServerCredential(ctx context.Context, s Server, r api.CredentialRotation) error {
	raw, ok := strings.CutPrefix(r.Credential, serverPrefix)
	if !ok {
		return wharf.Errorf(wharf.ErrInvalid, "credential: want %q and base64url", serverPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) < minCredentialBytes || len(b) > 256 {
		return wharf.Errorf(wharf.ErrInvalid, "credential: want %q and %d to 256 random bytes in base64url", serverPrefix, minCredentialBytes)
	}
	if err := c.servers.SetServerCredential(ctx, s.Name, s.CredentialHash, hashSecret(r.Credential)); err != nil {
		return err
	}
	if r.TaskID != "" {
		err := c.tasks.CompleteTask(ctx, s.Name, r.TaskID, "{}", c.now().UTC())
		if err != nil && !errors.Is(err, wharf.ErrNotFound) {
			c.log.Warn("complete the rotate-credential task", "server", s.Name, "task", r.TaskID, "err", err)
		}
	}
	c.changed(ctx, Change{Part: PartServer, Server: s.Name})
	return nil
}

// SetServerURL records the base URL a server reports it serves packages
// at (it reports it on every poll), so the codebases name where it is now:
// a server restarted on another port or with TLS is found there from its
// first poll on.
func (c *Catalog) SetServerURL(ctx context.Context, s Server, url string) error {
	if err := checkServerURL(url); err != nil {
		return wharf.Errorf(wharf.ErrInvalid, "url: %v", err)
	}
	url = strings.TrimRight(url, "/")
	if url == s.URL {
		return nil
	}
	if err := c.servers.SetServerURL(ctx, s.Name, url); err != nil {
		return err
	}
	c.log.Info("package server URL changed", "server", s.Name, "from", s.URL, "to", url)
	c.changed(ctx, Change{Part: PartServer, Server: s.Name})
	return nil
}
