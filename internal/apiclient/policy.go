package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/wharf-project/wharf/internal/api"
)

func policyPath(server, kind string) string {
	if server == "" {
		return "/policies/" + kind
	}
	return "/servers/" + url.PathEscape(server) + "/policies/" + kind
}

// PackageServerPolicy returns the global policy (server "") or a server's
// override.
func (c *Client) PackageServerPolicy(ctx context.Context, server string) (api.PackageServerPolicy, error) {
	var out api.PackageServerPolicy
	err := c.call(ctx, http.MethodGet, policyPath(server, api.PolicyPackageServer), nil, &out)
	return out, err
}

// SetPackageServerPolicy changes the fields set in in.
func (c *Client) SetPackageServerPolicy(ctx context.Context, server string, in api.PackageServerSettings) (api.PackageServerPolicy, error) {
	var out api.PackageServerPolicy
	err := c.call(ctx, http.MethodPut, policyPath(server, api.PolicyPackageServer), in, &out)
	return out, err
}

// SiteServerPolicy returns the global policy (server "") or an override.
func (c *Client) SiteServerPolicy(ctx context.Context, server string) (api.SiteServerPolicy, error) {
	var out api.SiteServerPolicy
	err := c.call(ctx, http.MethodGet, policyPath(server, api.PolicySiteServer), nil, &out)
	return out, err
}

// SetSiteServerPolicy changes the fields set in in.
func (c *Client) SetSiteServerPolicy(ctx context.Context, server string, in api.SiteServerSettings) (api.SiteServerPolicy, error) {
	var out api.SiteServerPolicy
	err := c.call(ctx, http.MethodPut, policyPath(server, api.PolicySiteServer), in, &out)
	return out, err
}

// ResetPolicy removes a server's overrides (both kinds when kind is "").
func (c *Client) ResetPolicy(ctx context.Context, server, kind string) error {
	path := "/servers/" + url.PathEscape(server) + "/policies"
	if kind != "" {
		path += "/" + kind
	}
	return c.call(ctx, http.MethodDelete, path, nil, nil)
}

// EffectivePolicy returns what a server runs with.
func (c *Client) EffectivePolicy(ctx context.Context, server string) (api.EffectivePolicy, error) {
	var out api.EffectivePolicy
	err := c.call(ctx, http.MethodGet, "/servers/"+url.PathEscape(server)+"/policy", nil, &out)
	return out, err
}
