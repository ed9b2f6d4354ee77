// Package console is the Notification Server's web console: server-rendered
// pages (html/template, with templates, CSS and a little JavaScript embedded
// from assets/) mounted at "/" beside the JSON API under /api/v1/. Its
// handlers call the catalog directly, in-process; every rule (validation,
// policies, alerts, tasks) stays in package catalog.
//
// # Pages
//
//	/login, /logout                  log in with the admin token or a console user's password
//	/                                dashboard: Package Servers by state, packages, recent alerts
//	/packages, /packages/{id}        packages; files, size, assignment, per-server state
//	/settings                        Site Server Settings: Package Server Settings and Global
//	                                 Site Server Settings; a Check button per storage path
//	/servers                         Package Servers: storage path, relocation state, last contact
//	/servers/{name}                  Resource Manager: Package Location Status, progress, history,
//	                                 per-package relocation states, overrides, Retry relocation
//	/alerts                          alerts; mark read
//
// Two small JSON endpoints feed the page scripts: /servers/{name}/status.json
// (relocation progress) and /servers/{name}/tasks/{id}/status.json (a
// check-location task). They answer 401 without a session; pages redirect to
// /login.
//
// # Sessions and CSRF
//
// Logging in creates a session: a random 256-bit id in the wharf_session
// cookie (HttpOnly, SameSite=Strict, Secure when the request came over TLS
// or Options.SecureCookies is set), kept in the NS's database (the
// SessionStore, keyed by the id's SHA-256, with the session's one-time
// messages), so every NS replica on the database knows it and it survives
// a restart. Sessions end after Options.SessionIdle without use, after
// Options.SessionMaxAge in any case, on logout, and when the user is
// removed or gets a new password.
//
// Every form carries the session's CSRF token in a hidden field; a POST
// without the right token is refused with 403 and changes nothing. The
// login form, used before there is a session, pairs its token with a
// short-lived cookie instead. POSTs must also pass net/http's
// cross-origin protection (Sec-Fetch-Site and Origin checks). Failed and
// successful logins alike spend from a per-IP budget
// (Options.LoginBurst, one more every Options.LoginEvery), kept in the
// database too, so the budget holds across replicas.
//
// Every page is sent with a strict Content-Security-Policy (no inline
// script or style), X-Frame-Options DENY, nosniff, no referrer, and
// Cache-Control: no-store.
package console
