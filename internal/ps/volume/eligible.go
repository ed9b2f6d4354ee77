package volume

import (
	"cmp"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// EligibleOptions narrows the volumes [Eligible] may pick.
type EligibleOptions struct {
	// Only, when not empty, is the PS config's storage.volumes: a volume is
	// a candidate only if its Root equals one of these mount points (after
	// filepath.Clean; without regard to case on Windows). An entry naming
	// no mounted volume is ignored.
	Only []string
}

// Eligible returns the volumes that "allow usage of all fixed drives" may
// rotate packages onto (SPEC §4), best first: fixed, supported, writable,
// not excluded by a [NoWharfMarker] file, and within opts.Only, sorted by
// AvailBytes descending (then Root, for a stable order). A filesystem
// mounted more than once (bind mounts) appears once: the mount of the whole
// filesystem if there is one, else the first listed. The error is the one
// from f.Volumes.
func Eligible(f Facts, opts EligibleOptions) ([]Info, error) {
	vols, err := f.Volumes()
	if err != nil {
		return nil, fmt.Errorf("list eligible volumes: %w", err)
	}
	var out []Info
	seen := map[string]int{} // filesystem key -> index in out
	for _, v := range vols {
		if Ineligible(v, opts) != "" {
			continue
		}
		key := fmt.Sprintf("%d\x00%s", v.DevID, v.Device)
		if i, ok := seen[key]; ok {
			if !wholeFS(out[i]) && wholeFS(v) {
				out[i] = v
			}
			continue
		}
		seen[key] = len(out)
		out = append(out, v)
	}
	slices.SortStableFunc(out, func(a, b Info) int {
		if c := cmp.Compare(b.AvailBytes, a.AvailBytes); c != 0 {
			return c
		}
		return cmp.Compare(a.Root, b.Root)
	})
	return out, nil
}

// wholeFS reports a mount of a whole filesystem rather than a bind mount of
// one of its folders.
func wholeFS(v Info) bool { return v.FSRoot == "" || v.FSRoot == "/" }

// Ineligible returns why v may not take rotated packages under opts, or ""
// when it may: "not in storage.volumes", "read-only", "excluded by
// NO_WHARF_ON_DRIVE", or the FixedReason or SupportedReason. It says
// nothing about free space, which the caller weighs against each package.
func Ineligible(v Info, opts EligibleOptions) string {
	switch {
	case len(opts.Only) > 0 && !slices.ContainsFunc(opts.Only, func(p string) bool { return samePath(p, v.Root) }):
		return "not in storage.volumes"
	case !v.Fixed:
		return "not fixed media: " + v.FixedReason
	case !v.Supported:
		return v.SupportedReason
	case v.ReadOnly:
		return "read-only"
	case v.Excluded:
		return "excluded by " + NoWharfMarker
	}
	return ""
}

// samePath compares two paths after cleaning, without regard to case on
// Windows.
func samePath(a, b string) bool {
	a, b = filepath.Clean(a), filepath.Clean(b)
	if runtime.GOOS == "windows" {
		return strings.EqualFold(a, b)
	}
	return a == b
}
