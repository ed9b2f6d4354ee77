package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wharf-project/wharf/internal/api"
)

// Agent routes: what a Package Server calls. The client's token is the PS's
// credential (none for Enroll).

// Enroll trades a one-time enrollment token for the Package Server's
// credential and signing key (POST /agent/enroll).
func (c *Client) Enroll(ctx context.Context, r api.EnrollRequest) (api.Enrollment, error) {
	var out api.Enrollment
	err := c.call(ctx, http.MethodPost, "/agent/enroll", r, &out)
	return out, err
}

// AgentConfig fetches the configuration of the Package Server name (GET
// /agent/{name}/config). With a non-empty etag the NS holds the request for
// up to wait until the configuration differs from etag; changed is false
// when it did not (HTTP 304), and then cfg is zero and newETag is etag. A
// zero wait asks for an immediate answer.
func (c *Client) AgentConfig(ctx context.Context, name, etag string, wait time.Duration) (cfg api.AgentConfig, newETag string, changed bool, err error) {
	return c.AgentConfigAt(ctx, name, "", etag, wait)
}

// AgentConfigAt is AgentConfig for a Package Server that also reports the
// base URL it serves packages at (?url=), which the NS records for its
// codebases when it changed; "" reports none.
func (c *Client) AgentConfigAt(ctx context.Context, name, serveURL, etag string, wait time.Duration) (cfg api.AgentConfig, newETag string, changed bool, err error) {
	path := "/agent/" + url.PathEscape(name) + "/config?wait=" + strconv.Itoa(int(wait/time.Second))
	if serveURL != "" {
		path += "&url=" + url.QueryEscape(serveURL)
	}
	req, err := c.NewRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return cfg, etag, false, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.Do(req, http.StatusNotModified)
	if err != nil {
		return cfg, etag, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		_, _ = io.Copy(io.Discard, resp.Body)
		return cfg, etag, false, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&cfg); err != nil {
		return cfg, etag, false, fmt.Errorf("GET %s: decode answer: %w", req.URL.Path, err)
	}
	return cfg, resp.Header.Get("ETag"), true, nil
}

// AgentPackage returns the manifest (files, no states) of a package assigned
// to the Package Server name (GET /agent/{name}/packages/{id}). An error
// wrapping wharf.ErrNotFound means the package is not assigned to it (any
// more).
func (c *Client) AgentPackage(ctx context.Context, name, id string) (api.Package, error) {
	var out api.Package
	err := c.call(ctx, http.MethodGet, "/agent/"+url.PathEscape(name)+"/packages/"+url.PathEscape(id), nil, &out)
	return out, err
}

// PutPackageStates reports the state of some packages of the Package Server
// name (POST /agent/{name}/package-states).
func (c *Client) PutPackageStates(ctx context.Context, name string, states []api.PackageState) error {
	return c.call(ctx, http.MethodPost, "/agent/"+url.PathEscape(name)+"/package-states", api.PackageStates{States: states}, nil)
}

// PollStats returns the long-poll counters of the NS process that answers
// (GET /stats, admin).
func (c *Client) PollStats(ctx context.Context) (api.PollStats, error) {
	var out api.PollStats
	err := c.call(ctx, http.MethodGet, "/stats", nil, &out)
	return out, err
}

// RotateCredential replaces the Package Server's credential by cred (POST
// /agent/{name}/credential), answering the rotate-credential task taskID
// ("" for none). From its answer on, the NS takes only cred: call
// SetToken(cred) then.
func (c *Client) RotateCredential(ctx context.Context, name, cred, taskID string) error {
	return c.call(ctx, http.MethodPost, "/agent/"+url.PathEscape(name)+"/credential",
		api.CredentialRotation{Credential: cred, TaskID: taskID}, nil)
}
