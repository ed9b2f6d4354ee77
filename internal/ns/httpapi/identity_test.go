package httpapi_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/api"
)

// TestReadersSeeWhatTheyMay: a client token reads every package (without
// the servers' states) and gets signed codebases; without a token only
// public packages are listed, read and resolved; a revoked token is
// refused at once; a server's reported URL is what the codebases name
// from its next poll on.
func TestReadersSeeWhatTheyMay(t *testing.T) {
	f := newFixture(t)
	credA := f.enroll("ps-a", "linux")
	d := f.putBlob("hello")
	signed := f.createPackage(api.PackageManifest{Name: "tool", Version: "1", Assignment: api.Assignment{All: true},
		Files: []api.File{{Path: "a", Size: 5, SHA256: d}}})
	public := f.createPackage(api.PackageManifest{Name: "bootstrap", Version: "1", Public: true, Assignment: api.Assignment{All: true},
		Files: []api.File{{Path: "a", Size: 5, SHA256: d}}})
	if code, body := f.do("POST", "/packages", strings.NewReader(`{"name":"x","version":"1","public":true,"signed":true,"files":[{"path":"a","size":5,"sha256":"`+d+`"}],"assignment":{"all":true}}`)); code != 400 {
		t.Fatalf("public and signed: %d %s, want 400", code, body)
	}
	states := `{"states":[{"package_id":"` + signed + `","state":"ready","path":"/srv/tool"},{"package_id":"` + public + `","state":"ready"}]}`
	if code, body := f.agentDo("POST", "/agent/ps-a/package-states", states, credA); code != 204 {
		t.Fatalf("states: %d %s", code, body)
	}
	code, body := f.do("POST", "/client-tokens", strings.NewReader(`{"name":"laptops"}`))
	if code != 201 {
		t.Fatalf("create client token: %d %s", code, body)
	}
	var ct api.ClientToken
	json.Unmarshal([]byte(body), &ct)
	if !strings.HasPrefix(ct.Token, "wharf-client-") {
		t.Fatalf("client token %+v", ct)
	}

	list := func(tok string) []string {
		t.Helper()
		code, body := f.do("GET", "/packages", nil, tok)
		if code != 200 {
			t.Fatalf("list: %d %s", code, body)
		}
		var l api.PackageList
		json.Unmarshal([]byte(body), &l)
		var names []string
		for _, p := range l.Packages {
			names = append(names, p.Name)
		}
		return names
	}
	if got := strings.Join(list(ct.Token), ","); got != "bootstrap,tool" {
		t.Errorf("a client lists %q, want both", got)
	}
	if got := strings.Join(list(""), ","); got != "bootstrap" {
		t.Errorf("no token lists %q, want the public package only", got)
	}
	read := func(id, tok string) (int, api.Package) {
		code, body := f.do("GET", "/packages/"+id, nil, tok)
		var p api.Package
		json.Unmarshal([]byte(body), &p)
		return code, p
	}
	if code, p := read(signed, ct.Token); code != 200 || len(p.Files) != 1 || len(p.States) != 0 || p.Public {
		t.Errorf("a client reads the signed package: %d %+v, want its files and no states", code, p)
	}
	if code, p := read(signed, f.token); code != 200 || len(p.States) != 1 {
		t.Errorf("the admin reads the signed package: %d, %d states, want 1", code, len(p.States))
	}
	if code, _ := read(signed, ""); code != 401 {
		t.Errorf("no token reads the signed package: %d, want 401", code)
	}
	if code, p := read(public, ""); code != 200 || !p.Public || len(p.States) != 0 {
		t.Errorf("no token reads the public package: %d %+v", code, p)
	}
	codebases := func(id, tok string) (int, api.Codebases) {
		code, body := f.do("GET", "/packages/"+id+"/codebases", nil, tok)
		var cb api.Codebases
		json.Unmarshal([]byte(body), &cb)
		return code, cb
	}
	if code, cb := codebases(signed, ct.Token); code != 200 || len(cb.Codebases) != 1 || !strings.Contains(cb.Codebases[0].Query, "sig=") {
		t.Errorf("a client's codebases of the signed package: %d %+v, want one with a signature", code, cb)
	}
	if code, _ := codebases(signed, ""); code != 401 {
		t.Errorf("no token's codebases of the signed package: %d, want 401", code)
	}
	if code, cb := codebases(public, ""); code != 200 || len(cb.Codebases) != 1 || cb.Codebases[0].Query != "" {
		t.Errorf("no token's codebases of the public package: %d %+v, want one without a query", code, cb)
	}

	// The server reports another URL with a poll: the codebases follow.
	if code, body := f.do("GET", "/agent/ps-a/config?wait=0&url="+url.QueryEscape("https://ps-a.example:9443/"), nil, credA); code != 200 {
		t.Fatalf("poll with a URL: %d %s", code, body)
	}
	if _, cb := codebases(public, ""); len(cb.Codebases) != 1 || cb.Codebases[0].URL != "https://ps-a.example:9443/packages/"+public+"/" {
		t.Errorf("codebases after the server reported a new URL: %+v", cb)
	}

	// Revoked: refused at once.
	if code, body := f.do("DELETE", "/client-tokens/laptops", nil); code != 204 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if code, _ := f.do("GET", "/packages", nil, ct.Token); code != 401 {
		t.Errorf("a revoked client token: %d, want 401", code)
	}
}
