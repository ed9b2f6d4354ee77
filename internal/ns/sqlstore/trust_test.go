package sqlstore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/ns/sqlstore"
	"github.com/wharf-project/wharf/internal/wharf"
)

// testIdentities: settings replaced, client tokens, a server's credential
// and URL replaced, a server removed with what it reported, alerts
// repeated and counted per server.
func testIdentities(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	// Settings.
	if _, err := s.InitSetting(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting(ctx, "new", "n"); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"k": "v2", "new": "n"} {
		if v, err := s.Setting(ctx, k); err != nil || v != want {
			t.Errorf("Setting(%s) = %q, %v; want %q", k, v, err, want)
		}
	}

	// Client tokens.
	a := catalog.ClientToken{Name: "build-farm", Hash: string(digest("token a")), CreatedAt: t0}
	b := catalog.ClientToken{Name: "laptops", Hash: string(digest("token b")), CreatedAt: t0.Add(time.Second)}
	for _, ct := range []catalog.ClientToken{b, a} {
		if err := s.CreateClientToken(ctx, ct); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "CreateClientToken(same name)", s.CreateClientToken(ctx, catalog.ClientToken{Name: "laptops", Hash: "x", CreatedAt: t0}), wharf.ErrExists)
	wantErr(t, "CreateClientToken(same hash)", s.CreateClientToken(ctx, catalog.ClientToken{Name: "other", Hash: a.Hash, CreatedAt: t0}), wharf.ErrExists)
	got, err := s.ClientTokenByHash(ctx, b.Hash)
	if b.CreatedAt = norm(b.CreatedAt); err != nil || !reflect.DeepEqual(got, b) {
		t.Errorf("ClientTokenByHash = %+v, %v; want %+v", got, err, b)
	}
	_, err = s.ClientTokenByHash(ctx, "nope")
	wantErr(t, "ClientTokenByHash(unknown)", err, wharf.ErrNotFound)
	list, err := s.ListClientTokens(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "build-farm" || list[1].Name != "laptops" {
		t.Errorf("ListClientTokens = %+v, %v; want build-farm, laptops", list, err)
	}
	if err := s.DeleteClientToken(ctx, "laptops"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteClientToken(again)", s.DeleteClientToken(ctx, "laptops"), wharf.ErrNotFound)
	_, err = s.ClientTokenByHash(ctx, b.Hash)
	wantErr(t, "ClientTokenByHash(deleted)", err, wharf.ErrNotFound)

	// A server's credential and URL.
	srv := newServer("ps-a")
	if err := s.CreateServer(ctx, srv); err != nil {
		t.Fatal(err)
	}
	other := newServer("ps-b")
	if err := s.CreateServer(ctx, other); err != nil {
		t.Fatal(err)
	}
	next := string(digest("next credential"))
	wantErr(t, "SetServerCredential(stale old hash)", s.SetServerCredential(ctx, "ps-a", "stale", next), wharf.ErrConflict)
	wantErr(t, "SetServerCredential(unknown server)", s.SetServerCredential(ctx, "ps-z", srv.CredentialHash, next), wharf.ErrNotFound)
	wantErr(t, "SetServerCredential(another's)", s.SetServerCredential(ctx, "ps-a", srv.CredentialHash, other.CredentialHash), wharf.ErrExists)
	if err := s.SetServerCredential(ctx, "ps-a", srv.CredentialHash, next); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ServerByCredential(ctx, next); err != nil || got.Name != "ps-a" {
		t.Errorf("ServerByCredential(new) = %+v, %v", got, err)
	}
	_, err = s.ServerByCredential(ctx, srv.CredentialHash)
	wantErr(t, "ServerByCredential(old)", err, wharf.ErrNotFound)
	if err := s.SetServerURL(ctx, "ps-a", "https://ps-a:9443"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Server(ctx, "ps-a"); got.URL != "https://ps-a:9443" {
		t.Errorf("URL after SetServerURL = %q", got.URL)
	}
	wantErr(t, "SetServerURL(unknown)", s.SetServerURL(ctx, "ps-z", "http://x:1"), wharf.ErrNotFound)

	// Removal takes what the server reported, and nothing of another's.
	p := newPackage("app", "1", t0)
	if err := s.CreatePackage(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, name := range []wharf.ServerName{"ps-a", "ps-b"} {
		if err := s.PutPackageStates(ctx, []catalog.PackageState{{Server: name, PackageID: p.ID, State: "ready", UpdatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutPolicy(ctx, name, "package-server", `{}`, 0, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTask(ctx, catalog.Task{ID: string(wharf.NewPackageID()), Server: name, Type: "retry-relocation", Args: "{}", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutLocationEvent(ctx, name, t0, `{}`, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteServer(ctx, "ps-a"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteServer(again)", s.DeleteServer(ctx, "ps-a"), wharf.ErrNotFound)
	_, err = s.Server(ctx, "ps-a")
	wantErr(t, "Server(removed)", err, wharf.ErrNotFound)
	for name, want := range map[wharf.ServerName]int{"ps-a": 0, "ps-b": 1} {
		states, _ := s.PackageStates(ctx, catalog.StateFilter{Server: name})
		tasks, _ := s.PendingTasks(ctx, name)
		hist, _ := s.LocationHistory(ctx, name, 10)
		_, perr := s.Policy(ctx, name, "package-server")
		if len(states) != want || len(tasks) != want || len(hist) != want || (perr == nil) != (want == 1) {
			t.Errorf("%s after removing ps-a: %d states, %d tasks, %d events, override %v; want %d of each", name, len(states), len(tasks), len(hist), perr, want)
		}
	}

	// Alerts: a repeat, counted per server.
	alert := catalog.Alert{ID: string(wharf.NewPackageID()), Server: "ps-b", Level: "warning", Message: "m", Fingerprint: "fp", CreatedAt: t0, LastSeenAt: t0}
	if _, err := s.RaiseAlert(ctx, alert); err != nil {
		t.Fatal(err)
	}
	_, err = s.RepeatAlert(ctx, "other", t0)
	wantErr(t, "RepeatAlert(unknown)", err, wharf.ErrNotFound)
	rep, err := s.RepeatAlert(ctx, "fp", t0.Add(time.Minute))
	if err != nil || rep.Count != 2 || !rep.LastSeenAt.Equal(norm(t0.Add(time.Minute))) || rep.ID != alert.ID {
		t.Errorf("RepeatAlert = %+v, %v; want the alert counted twice, seen a minute later", rep, err)
	}
	if _, err := s.MarkAllAlertsRead(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, err = s.RepeatAlert(ctx, "fp", t0)
	wantErr(t, "RepeatAlert(read)", err, wharf.ErrNotFound)
	for i, at := range []time.Duration{0, time.Minute, 2 * time.Hour} {
		a := catalog.Alert{ID: string(wharf.NewPackageID()), Server: "ps-c", Level: "info", Message: "x", Fingerprint: string(rune('a' + i)),
			CreatedAt: t0.Add(at), LastSeenAt: t0.Add(at)}
		if _, err := s.RaiseAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		server wharf.ServerName
		since  time.Time
		want   int
	}{{"ps-c", t0, 3}, {"ps-c", t0.Add(time.Second), 2}, {"ps-c", t0.Add(3 * time.Hour), 0}, {"ps-b", t0, 1}, {"ps-z", t0, 0}} {
		if n, err := s.CountAlertsSince(ctx, c.server, c.since); err != nil || n != c.want {
			t.Errorf("CountAlertsSince(%s, %s) = %d, %v; want %d", c.server, c.since, n, err, c.want)
		}
	}
}
