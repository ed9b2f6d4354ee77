package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wharf-project/wharf/internal/api"
)

// PostLocationStatus sends a Package Location Status event (agent route).
func (c *Client) PostLocationStatus(ctx context.Context, server string, ev api.LocationStatus) error {
	return c.call(ctx, http.MethodPost, "/agent/"+url.PathEscape(server)+"/events", ev, nil)
}

// CompleteTask answers a server task (agent route).
func (c *Client) CompleteTask(ctx context.Context, server, id string, res api.TaskResult) error {
	return c.call(ctx, http.MethodPost, "/agent/"+url.PathEscape(server)+"/tasks/"+url.PathEscape(id)+"/result", res, nil)
}

// LocationHistory returns a server's relocation attempts, newest first;
// limit 0 means the NS's maximum.
func (c *Client) LocationHistory(ctx context.Context, server string, limit int) (api.LocationHistory, error) {
	path := "/servers/" + url.PathEscape(server) + "/location-history"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out api.LocationHistory
	err := c.call(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// CreateTask queues a server task.
func (c *Client) CreateTask(ctx context.Context, server string, req api.TaskRequest) (api.Task, error) {
	var out api.Task
	err := c.call(ctx, http.MethodPost, "/servers/"+url.PathEscape(server)+"/tasks", req, &out)
	return out, err
}

// Task returns a server task and its result once done.
func (c *Client) Task(ctx context.Context, server, id string) (api.Task, error) {
	var out api.Task
	err := c.call(ctx, http.MethodGet, "/servers/"+url.PathEscape(server)+"/tasks/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Alerts lists alerts, newest first.
func (c *Client) Alerts(ctx context.Context, unreadOnly bool) ([]api.Alert, error) {
	path := "/alerts"
	if unreadOnly {
		path += "?unread=true"
	}
	var out api.AlertList
	err := c.call(ctx, http.MethodGet, path, nil, &out)
	return out.Alerts, err
}

// MarkAlertRead marks an alert read.
func (c *Client) MarkAlertRead(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, "/alerts/"+url.PathEscape(id)+"/read", struct{}{}, nil)
}

// MarkAllAlertsRead marks every unread alert read and returns how many.
func (c *Client) MarkAllAlertsRead(ctx context.Context) (int, error) {
	var out api.AlertsRead
	err := c.call(ctx, http.MethodPost, "/alerts/read", struct{}{}, &out)
	return out.Marked, err
}

// PostHealth sends a Package Server's health report.
func (c *Client) PostHealth(ctx context.Context, server string, r api.HealthReport) error {
	return c.call(ctx, http.MethodPost, "/agent/"+url.PathEscape(server)+"/health", r, nil)
}

// CreateClientToken makes a client token (its token is in the answer, once).
func (c *Client) CreateClientToken(ctx context.Context, name string) (api.ClientToken, error) {
	var out api.ClientToken
	err := c.call(ctx, http.MethodPost, "/client-tokens", api.ClientTokenRequest{Name: name}, &out)
	return out, err
}

// ListClientTokens lists the client tokens (names and dates only).
func (c *Client) ListClientTokens(ctx context.Context) ([]api.ClientToken, error) {
	var out api.ClientTokenList
	err := c.call(ctx, http.MethodGet, "/client-tokens", nil, &out)
	return out.Tokens, err
}

// RevokeClientToken removes a client token; it stops working at once.
func (c *Client) RevokeClientToken(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/client-tokens/"+url.PathEscape(name), nil, nil)
}

// RotateAdminToken replaces the admin token and returns the new one; the
// old one (this client's) stops working.
func (c *Client) RotateAdminToken(ctx context.Context) (string, error) {
	var out api.AdminToken
	err := c.call(ctx, http.MethodPost, "/admin-token", nil, &out)
	return out.Token, err
}

// RemoveServer removes an enrolled Package Server; its credential stops
// working at once.
func (c *Client) RemoveServer(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/servers/"+url.PathEscape(name), nil, nil)
}

// RequestCredentialRotation asks a Package Server to replace its
// credential with its next poll; the task answers when it did.
func (c *Client) RequestCredentialRotation(ctx context.Context, name string) (api.Task, error) {
	var out api.Task
	err := c.call(ctx, http.MethodPost, "/servers/"+url.PathEscape(name)+"/rotate-credential", nil, &out)
	return out, err
}
