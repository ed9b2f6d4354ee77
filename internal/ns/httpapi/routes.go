package httpapi

import (
	"fmt"
	"net/http"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Access says who may call a route. The NS decides it from the bearer
// token (catalog.Authenticate), never from what a client says it is.
type Access string

// Access rules. A missing or unknown token on a route that needs one is
// 401; a known token of the wrong kind is 403.
const (
	// Anyone: no token (enrollment: its one-time token is in the body).
	Anyone Access = "anyone"
	// Reader: the admin, a client token, or no token for public packages
	// only (401 for a signed one); a Package Server credential is 403.
	Reader Access = "reader"
	// Admin: the admin token.
	Admin Access = "admin"
	// Agent: the credential of the Package Server the path names (403 for
	// another server's).
	Agent Access = "agent"
	// AdminOrAgent: the admin token, or a Package Server credential for
	// what is assigned to that server.
	AdminOrAgent Access = "admin-or-agent"
)

// Route is one route of the API: its method and pattern (as net/http's
// ServeMux takes them, under api.Prefix) and who may call it.
type Route struct {
	Method, Pattern string
	Access          Access
	h               func(w http.ResponseWriter, r *http.Request, who catalog.Principal) error
}

// routes is the API: every route is here, with its access rule, and
// nowhere else (the authorization matrix test is generated from it).
func (s *Server) routes() []Route {
	plain := func(h handlerFunc) func(http.ResponseWriter, *http.Request, catalog.Principal) error {
		return func(w http.ResponseWriter, r *http.Request, _ catalog.Principal) error { return h(w, r) }
	}
	agent := func(h agentHandlerFunc) func(http.ResponseWriter, *http.Request, catalog.Principal) error {
		return func(w http.ResponseWriter, r *http.Request, who catalog.Principal) error { return h(w, r, who.Server) }
	}
	return []Route{
		{"GET", "/blobs/{digest}", AdminOrAgent, s.getBlob},
		{"HEAD", "/blobs/{digest}", AdminOrAgent, s.getBlob},
		{"PUT", "/blobs/{digest}", Admin, plain(s.putBlob)},
		{"POST", "/packages", Admin, plain(s.createPackage)},
		{"GET", "/packages", Reader, s.listPackages},
		{"GET", "/packages/{id}", Reader, s.getPackage},
		{"DELETE", "/packages/{id}", Admin, plain(s.deletePackage)},
		{"GET", "/packages/{id}/codebases", Reader, s.codebases},
		{"POST", "/enroll-tokens", Admin, plain(s.createEnrollToken)},
		{"POST", "/client-tokens", Admin, plain(s.createClientToken)},
		{"GET", "/client-tokens", Admin, plain(s.listClientTokens)},
		{"DELETE", "/client-tokens/{name}", Admin, plain(s.revokeClientToken)},
		{"POST", "/admin-token", Admin, plain(s.rotateAdminToken)},
		{"GET", "/servers", Admin, plain(s.listServers)},
		{"GET", "/servers/{name}", Admin, plain(s.getServer)},
		{"DELETE", "/servers/{name}", Admin, plain(s.removeServer)},
		{"POST", "/servers/{name}/rotate-credential", Admin, plain(s.rotateCredential)},
		{"GET", "/servers/{name}/location-history", Admin, plain(s.locationHistory)},
		{"POST", "/servers/{name}/tasks", Admin, plain(s.createTask)},
		{"GET", "/servers/{name}/tasks/{id}", Admin, plain(s.getTask)},
		{"GET", "/policies/{kind}", Admin, plain(s.getPolicy)},
		{"PUT", "/policies/{kind}", Admin, plain(s.putPolicy)},
		{"GET", "/servers/{name}/policies/{kind}", Admin, plain(s.getPolicy)},
		{"PUT", "/servers/{name}/policies/{kind}", Admin, plain(s.putPolicy)},
		{"DELETE", "/servers/{name}/policies/{kind}", Admin, plain(s.deletePolicy)},
		{"DELETE", "/servers/{name}/policies", Admin, plain(s.deletePolicy)},
		{"GET", "/servers/{name}/policy", Admin, plain(s.effectivePolicy)},
		{"GET", "/alerts", Admin, plain(s.listAlerts)},
		{"POST", "/alerts/{id}/read", Admin, plain(s.markAlertRead)},
		{"POST", "/alerts/read", Admin, plain(s.markAllAlertsRead)},
		{"GET", "/stats", Admin, plain(s.stats)},
		{"POST", "/agent/enroll", Anyone, plain(s.enroll)},
		{"GET", "/agent/{name}/config", Agent, agent(s.agentConfig)},
		{"GET", "/agent/{name}/packages/{id}", Agent, agent(s.agentPackage)},
		{"POST", "/agent/{name}/package-states", Agent, agent(s.agentStates)},
		{"POST", "/agent/{name}/events", Agent, agent(s.agentEvent)},
		{"POST", "/agent/{name}/health", Agent, agent(s.agentHealth)},
		{"POST", "/agent/{name}/tasks/{id}/result", Agent, agent(s.agentTaskResult)},
		{"POST", "/agent/{name}/credential", Agent, agent(s.agentCredential)},
	}
}

// Routes lists the API's routes (patterns with api.Prefix) and their
// access rules.
func (s *Server) Routes() []Route {
	list := s.routes()
	for i := range list {
		list[i].Pattern = api.Prefix + list[i].Pattern
		list[i].h = nil
	}
	return list
}

// Registrar is where routes go: *http.ServeMux.
type Registrar interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the API's routes to mux, each behind its access rule, and
// answers 404 for any other path under api.Prefix.
func (s *Server) Register(mux Registrar) {
	for _, rt := range s.routes() {
		mux.Handle(rt.Method+" "+api.Prefix+rt.Pattern, s.guard(rt.Access, rt.h))
	}
	mux.Handle(api.Prefix+"/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("no such API route: %s %s: %w", r.Method, r.URL.Path, wharf.ErrNotFound)
	}))
}

// guard authenticates a request and lets it through when its access rule
// allows who sent it.
func (s *Server) guard(access Access, h func(http.ResponseWriter, *http.Request, catalog.Principal) error) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		who, err := s.authorize(r, access)
		if err != nil {
			return err
		}
		return h(w, r, who)
	})
}

// authorize returns who sent r when access allows it; otherwise an error
// wrapping wharf.ErrUnauthorized (no or an unknown token) or
// wharf.ErrForbidden (a token that may not do this).
func (s *Server) authorize(r *http.Request, access Access) (catalog.Principal, error) {
	if access == Anyone {
		return catalog.Principal{Role: catalog.RoleAnonymous}, nil
	}
	who, err := s.cat.Authenticate(r.Context(), bearer(r))
	if err != nil {
		return who, err
	}
	need := func(what string) (catalog.Principal, error) {
		if who.Role == catalog.RoleAnonymous {
			return who, wharf.Errorf(wharf.ErrUnauthorized, "%s %s needs %s (Authorization: Bearer)", r.Method, r.URL.Path, what)
		}
		return who, wharf.Errorf(wharf.ErrForbidden, "%s %s needs %s; a %s token may not", r.Method, r.URL.Path, what, roleWord(who.Role))
	}
	switch access {
	case Reader:
		if who.Role == catalog.RoleServer {
			return need("the admin token or a client token")
		}
		return who, nil
	case Admin:
		if who.Role != catalog.RoleAdmin {
			return need("the admin token")
		}
		return who, nil
	case AdminOrAgent:
		if who.Role != catalog.RoleAdmin && who.Role != catalog.RoleServer {
			return need("the admin token or a package server credential")
		}
		return who, nil
	case Agent:
		if who.Role != catalog.RoleServer {
			return need("the package server's credential")
		}
		name, err := wharf.ParseServerName(r.PathValue("name"))
		if err != nil || name != who.Server.Name {
			return who, wharf.Errorf(wharf.ErrForbidden, "server %s may not act as %q", who.Server.Name, r.PathValue("name"))
		}
		return who, nil
	}
	return who, fmt.Errorf("route %s %s: unknown access rule %q", r.Method, r.URL.Path, access)
}

func roleWord(r catalog.Role) string {
	if r == catalog.RoleServer {
		return "package server"
	}
	return r.String()
}
