package catalog

import (
	"errors"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

const fuzzDigest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

// FuzzManifest: a body POST /packages decodes (api.Unmarshal) and
// checkManifest accepts describes a package whose every name and path is
// clean: valid relative paths, no two the same entry on NTFS, a clean name
// and version, an assignment that is one thing, an absolute custom
// location. Nothing panics on any input.
func FuzzManifest(f *testing.F) {
	for _, s := range []string{
		`{"name":"app","version":"1","files":[{"path":"a","size":1,"sha256":"` + fuzzDigest + `"}],"assignment":{"all":true}}`,
		`{"name":"app","version":"1","files":[{"path":"../x","size":1,"sha256":"` + fuzzDigest + `"}],"assignment":{"all":true}}`,
		`{"name":"app","version":"1","files":[{"path":"A","size":1,"sha256":"` + fuzzDigest + `"},{"path":"a","size":1,"sha256":"` + fuzzDigest + `"}],"assignment":{"servers":["ps1"]}}`,
		`{"name":"a\u202eb","version":"1","files":[],"assignment":{"all":true},"custom_location":"/srv/x"}`,
		`{"name":"app","name":"x"}`, `{"Name":"app"}`, "{\"name\":\"\xff\"}", `{"public":true,"signed":true}`,
		`{"name":"app","version":"1","files":[{"path":"a","size":-1,"sha256":"` + fuzzDigest + `"}],"assignment":{"all":true},"custom_location":"E:\\pkgs"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m api.PackageManifest
		if err := api.Unmarshal(body, &m); err != nil {
			return
		}
		p, err := checkManifest(m)
		if err != nil {
			if !isInvalid(err) {
				t.Fatalf("refused with an error of another kind: %v", err)
			}
			return
		}
		for _, s := range []string{p.Name, p.Version} {
			if s == "" || wharf.CheckText(s) != nil || strings.ContainsAny(s, `/\@`) || strings.TrimSpace(s) != s {
				t.Fatalf("accepted name or version %q", s)
			}
		}
		paths := make([]string, len(p.Files))
		for i, file := range p.Files {
			paths[i] = file.Path
			if file.Size < 0 || len(file.SHA256) != 64 {
				t.Fatalf("accepted file %+v", file)
			}
		}
		if err := wharf.ValidateFileSet(paths); err != nil || !slices.IsSorted(paths) || len(paths) == 0 {
			t.Fatalf("accepted files %q: %v", paths, err)
		}
		if p.AssignAll == (len(p.Servers) > 0) {
			t.Fatalf("accepted assignment all=%v servers=%v", p.AssignAll, p.Servers)
		}
		if p.Signed == m.Public {
			t.Fatalf("public=%v gave signed=%v", m.Public, p.Signed)
		}
		if loc := p.CustomLocation; loc != "" && wharf.CheckText(loc) != nil {
			t.Fatalf("accepted custom location %q", loc)
		}
	})
}

// FuzzPolicyValues: the Package Server and Site Server settings a PUT
// /policies/{kind} body decodes to are accepted only with storage
// locations that are "default" or an absolute, clean path of clean text
// outside the system folders, a known relocation mode, and counts in
// range.
func FuzzPolicyValues(f *testing.F) {
	for _, s := range []string{`{"linux_location":"/srv/wharf"}`, `{"linux_location":"/etc/wharf"}`, `{"windows_location":"D:\\Wharf"}`,
		`{"windows_location":"C:\\Windows\\x"}`, `{"linux_location":"/srv/\u202ex"}`, `{"linux_location":"relative"}`,
		`{"relocation_mode":"exclusive"}`, `{"poll_interval_seconds":0}`, `{"download_concurrency":65}`, `{"download_bandwidth":-1}`,
		`{"linux_location":"/srv/../etc"}`, `{"windows_location":"\\\\server\\share"}`, `{"linux_location":"default"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var ps api.PackageServerSettings
		if api.Unmarshal(body, &ps) == nil {
			if err := checkPackageServerSettings(ps); err == nil {
				if v := ps.LinuxLocation; v != nil && *v != api.LocationDefault {
					if !strings.HasPrefix(*v, "/") || path.Clean(*v) != *v || *v == "/" || wharf.CheckText(*v) != nil {
						t.Fatalf("accepted linux_location %q", *v)
					}
				}
				if v := ps.WindowsLocation; v != nil && *v != api.LocationDefault {
					if wharf.CheckText(*v) != nil || strings.HasPrefix(*v, `\\`) && !strings.HasPrefix(*v, `\\?\`) ||
						strings.Contains(*v, `\..\`) || strings.HasSuffix(*v, `\..`) {
						t.Fatalf("accepted windows_location %q", *v)
					}
				}
				if v := ps.RelocationMode; v != nil && *v != api.RelocationOnline && *v != api.RelocationExclusive {
					t.Fatalf("accepted relocation_mode %q", *v)
				}
			} else if !isInvalid(err) {
				t.Fatalf("refused with an error of another kind: %v", err)
			}
		}
		var ss api.SiteServerSettings
		if api.Unmarshal(body, &ss) == nil && checkSiteServerSettings(ss) == nil {
			if v := ss.PollIntervalSeconds; v != nil && (*v < 1 || *v > MaxPollIntervalSeconds) {
				t.Fatalf("accepted poll_interval_seconds %d", *v)
			}
			if v := ss.DownloadConcurrency; v != nil && (*v < 1 || *v > MaxDownloadConcurrency) {
				t.Fatalf("accepted download_concurrency %d", *v)
			}
			if v := ss.DownloadBandwidth; v != nil && *v < 0 {
				t.Fatalf("accepted download_bandwidth %d", *v)
			}
		}
	})
}

func isInvalid(err error) bool { return errors.Is(err, wharf.ErrInvalid) }
