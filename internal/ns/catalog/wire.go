package catalog

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// The catalog's domain types (Package, wharf.File, Server, ...) meet the JSON wire
// types of package api only here: every conversion between the two is in
// this file.

// fileFromWire converts a manifest's file, checking its digest. (Its path
// and size are checked by checkManifest, with the rest of the manifest.)
func fileFromWire(f api.File) (wharf.File, error) {
	d, err := wharf.ParseDigest(f.SHA256)
	if err != nil {
		return wharf.File{}, err
	}
	return wharf.File{Path: f.Path, Size: f.Size, SHA256: d}, nil
}

// wireFile converts a stored file to the wire form.
func wireFile(f wharf.File) api.File {
	return api.File{Path: f.Path, Size: f.Size, SHA256: string(f.SHA256)}
}

// summary converts a stored package to its wire summary.
func summary(p Package) api.PackageSummary {
	s := api.PackageSummary{
		ID: string(p.ID), Name: p.Name, Version: p.Version, Size: p.Size, FileCount: p.FileCount,
		CustomLocation: p.CustomLocation, Signed: p.Signed, Public: !p.Signed, CreatedAt: p.CreatedAt,
		Assignment: api.Assignment{All: p.AssignAll},
	}
	for _, n := range p.Servers {
		s.Assignment.Servers = append(s.Assignment.Servers, string(n))
	}
	return s
}

// wirePackage converts a stored package with files to the wire form.
func wirePackage(p Package) api.Package {
	out := api.Package{PackageSummary: summary(p), Files: make([]api.File, len(p.Files))}
	for i, f := range p.Files {
		out.Files[i] = wireFile(f)
	}
	return out
}

func wireState(s PackageState) api.PackageState {
	return api.PackageState{Server: string(s.Server), PackageID: string(s.PackageID), State: s.State,
		Reason: s.Reason, Path: s.Path, UpdatedAt: s.UpdatedAt}
}

// wireServer converts a stored server; contact is a later last contact
// kept in memory, not written yet (zero: none).
func wireServer(s Server, contact time.Time) api.Server {
	if contact.After(s.LastContact) {
		s.LastContact = contact
	}
	return api.Server{Name: string(s.Name), OS: s.OS, URL: s.URL, EnrolledAt: s.EnrolledAt, LastContact: s.LastContact}
}

func wireTask(t Task) (api.Task, error) {
	out := api.Task{ID: t.ID, Server: string(t.Server), Type: t.Type, CreatedAt: t.CreatedAt, DoneAt: t.DoneAt}
	var req api.TaskRequest
	if err := json.Unmarshal([]byte(t.Args), &req); err != nil {
		return out, fmt.Errorf("task %s in store is corrupt: %w", t.ID, err)
	}
	out.Path = req.Path
	if t.Result != "" {
		var res api.TaskResult
		if err := json.Unmarshal([]byte(t.Result), &res); err != nil {
			return out, fmt.Errorf("task %s result in store is corrupt: %w", t.ID, err)
		}
		out.Error, out.Plan = res.Error, res.Plan
	}
	return out, nil
}

func wireAlert(a Alert) api.Alert {
	return api.Alert{ID: a.ID, Server: string(a.Server), Level: a.Level, Message: a.Message, CreatedAt: a.CreatedAt, ReadAt: a.ReadAt,
		Count: max(a.Count, 1), LastSeenAt: a.LastSeenAt}
}
