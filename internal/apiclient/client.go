// Package apiclient is the typed HTTP client for Wharf's API (package api).
// The CLI, the Package Server and the tests use it; it knows routes, auth
// and error mapping, and nothing of the servers' rules.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Client calls one Notification Server with one bearer token (admin token
// or PS credential). It is safe for concurrent use.
type Client struct {
	base  string // scheme://host[:port], no trailing slash
	token atomic.Pointer[string]
	hc    *http.Client
}

// New returns a client for the NS at baseURL (http or https). An empty token
// makes unauthenticated calls (enrollment uses one).
func New(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid notification server URL %q: want http(s)://host:port", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport}
	}
	c := &Client{base: u.Scheme + "://" + u.Host + strings.TrimRight(u.Path, "/"), hc: hc}
	c.token.Store(&token)
	return c, nil
}

// SetToken replaces the bearer token of every later call (a Package
// Server whose credential was rotated).
func (c *Client) SetToken(token string) { c.token.Store(&token) }

// BaseURL returns the NS URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// Error is an error answer of the API.
type Error struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %s (HTTP %d)", e.Method, e.Path, e.Message, e.Status)
}

// Unwrap maps the HTTP status back to a wharf error kind (api.ErrorKind), so
// callers can test errors.Is(err, wharf.ErrNotFound).
func (e *Error) Unwrap() error { return api.ErrorKind(e.Status) }

// IsStatus reports whether err is an API error with the given status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// NewRequest builds a request for an API path (relative to /api/v1) with the
// client's token set.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+api.Prefix+path, body)
	if err != nil {
		return nil, err
	}
	if tok := *c.token.Load(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// Do sends req and returns the response when its status is 2xx or one of
// okStatus; any other status is read into an *Error and the body closed.
func (c *Client) Do(req *http.Request, okStatus ...int) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	for _, s := range okStatus {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, readError(req, resp)
}

func readError(req *http.Request, resp *http.Response) error {
	e := &Error{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode}
	var body api.Error
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Message = body.Error
	} else if len(bytes.TrimSpace(data)) > 0 && req.Method != http.MethodHead {
		e.Message = strings.TrimSpace(string(data))
	} else {
		e.Message = strings.ToLower(http.StatusText(resp.StatusCode))
	}
	return e
}

// call sends a JSON request (in may be nil) and decodes a JSON answer into
// out (which may be nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := c.NewRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// HasBlob reports whether the NS has the blob.
func (c *Client) HasBlob(ctx context.Context, d wharf.Digest) (bool, error) {
	req, err := c.NewRequest(ctx, http.MethodHead, "/blobs/"+string(d), nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// PutBlob uploads size bytes from r as the blob d.
func (c *Client) PutBlob(ctx context.Context, d wharf.Digest, r io.Reader, size int64) error {
	req, err := c.NewRequest(ctx, http.MethodPut, "/blobs/"+string(d), r)
	if err != nil {
		return err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// OpenBlob downloads a blob from offset on. The caller closes the body.
func (c *Client) OpenBlob(ctx context.Context, d wharf.Digest, offset int64) (io.ReadCloser, error) {
	req, err := c.NewRequest(ctx, http.MethodGet, "/blobs/"+string(d), nil)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if offset > 0 && resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, fmt.Errorf("GET blob %s from %d: server ignored the range (HTTP %d)", d, offset, resp.StatusCode)
	}
	return resp.Body, nil
}

// CreatePackage publishes a manifest. created is false when an identical
// package existed already.
func (c *Client) CreatePackage(ctx context.Context, m api.PackageManifest) (p api.Package, created bool, err error) {
	data, err := json.Marshal(m)
	if err != nil {
		return p, false, err
	}
	req, err := c.NewRequest(ctx, http.MethodPost, "/packages", bytes.NewReader(data))
	if err != nil {
		return p, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return p, false, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return p, false, fmt.Errorf("POST /packages: decode answer: %w", err)
	}
	return p, resp.StatusCode == http.StatusCreated, nil
}

// ListPackages lists packages; name and version filter when not empty.
func (c *Client) ListPackages(ctx context.Context, name, version string) ([]api.PackageSummary, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	if version != "" {
		q.Set("version", version)
	}
	path := "/packages"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.PackageList
	err := c.call(ctx, http.MethodGet, path, nil, &out)
	return out.Packages, err
}

// Package returns one package with its files and states.
func (c *Client) Package(ctx context.Context, id string) (api.Package, error) {
	var out api.Package
	err := c.call(ctx, http.MethodGet, "/packages/"+url.PathEscape(id), nil, &out)
	return out, err
}

// DeletePackage deletes a package.
func (c *Client) DeletePackage(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/packages/"+url.PathEscape(id), nil, nil)
}

// Codebases lists where a package can be downloaded.
func (c *Client) Codebases(ctx context.Context, id string) (api.Codebases, error) {
	var out api.Codebases
	err := c.call(ctx, http.MethodGet, "/packages/"+url.PathEscape(id)+"/codebases", nil, &out)
	return out, err
}

// CreateEnrollToken mints a one-time enrollment token for a Package Server.
func (c *Client) CreateEnrollToken(ctx context.Context) (api.EnrollToken, error) {
	var out api.EnrollToken
	err := c.call(ctx, http.MethodPost, "/enroll-tokens", struct{}{}, &out)
	return out, err
}

// ListServers lists enrolled Package Servers.
func (c *Client) ListServers(ctx context.Context) ([]api.Server, error) {
	var out api.ServerList
	err := c.call(ctx, http.MethodGet, "/servers", nil, &out)
	return out.Servers, err
}

// Server returns one Package Server with its package states.
func (c *Client) Server(ctx context.Context, name string) (api.Server, error) {
	var out api.Server
	err := c.call(ctx, http.MethodGet, "/servers/"+url.PathEscape(name), nil, &out)
	return out, err
}

// ServerPage returns one server with a page of its package states (limit 0:
// none, only their counts).
func (c *Client) ServerPage(ctx context.Context, name string, offset, limit int) (api.Server, error) {
	var out api.Server
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	err := c.call(ctx, http.MethodGet, "/servers/"+url.PathEscape(name)+"?"+q.Encode(), nil, &out)
	return out, err
}

// PackagePage lists a page of the packages whose name is name (when set)
// and whose name, version or id contains query (when set), with the count
// of all that match.
func (c *Client) PackagePage(ctx context.Context, name, query string, offset, limit int) (api.PackageList, error) {
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	if name != "" {
		q.Set("name", name)
	}
	if query != "" {
		q.Set("q", query)
	}
	var out api.PackageList
	err := c.call(ctx, http.MethodGet, "/packages?"+q.Encode(), nil, &out)
	return out, err
}
