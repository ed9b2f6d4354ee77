package wharf

import (
	"fmt"
	"strings"
)

// RelocationStatus is the status of a Package Server's last relocation
// attempt (SPEC §6.3): a set of bits, reported to the NS as a uint32 with
// the names of the bits that are set. Several prerequisite bits may be set
// at once: an attempt reports every prerequisite that failed.
type RelocationStatus uint32

// The relocation status bits, bit 0 first, as SPEC §6.3 lists them.
const (
	// RelocationSuccess: every package is at the target.
	RelocationSuccess RelocationStatus = 1 << iota
	// RelocationSomeNotMoved: a warning; some packages stay behind links.
	RelocationSomeNotMoved
	// RelocationInProgress: an attempt is running.
	RelocationInProgress
	// RelocationNotFixedMedia: the target volume is not fixed media.
	RelocationNotFixedMedia
	// RelocationUnsupportedFilesystem: the target filesystem cannot hold
	// the links used as fallback.
	RelocationUnsupportedFilesystem
	// RelocationInsufficientSpace: the target volume lacks the space for
	// the packages not already on it plus the reserve.
	RelocationInsufficientSpace
	// RelocationKnownFolder: the target is a known system folder or below one.
	RelocationKnownFolder
	// RelocationPathTooLong: a package file would exceed the OS path limits.
	RelocationPathTooLong
	// RelocationInvalidTarget: the target is not an absolute, creatable,
	// writable folder that is empty or a Wharf store of this PS.
	RelocationInvalidTarget
	// RelocationRetriesExhausted: the automatic retries are used up.
	RelocationRetriesExhausted
	// RelocationManual: the attempt was started by hand.
	RelocationManual
	// RelocationConsolidated: rotated packages were gathered at the target.
	RelocationConsolidated
)

// RelocationPrerequisites are the bits of the six prerequisites (SPEC §6.1);
// an attempt with any of them set moved nothing.
const RelocationPrerequisites = RelocationNotFixedMedia | RelocationUnsupportedFilesystem |
	RelocationInsufficientSpace | RelocationKnownFolder | RelocationPathTooLong | RelocationInvalidTarget

// RelocationWarning is the warning an attempt ends with when some packages
// could not be moved and stay behind links (SPEC §6.2), word for word.
const RelocationWarning = "Some of the files have not been moved to the new location."

// relocationNames are SPEC §6.3's names of the bits, bit 0 first.
var relocationNames = [...]string{
	"success", "some-not-moved", "in-progress", "not-fixed-media", "unsupported-filesystem",
	"insufficient-space", "known-folder", "path-too-long", "invalid-target", "retries-exhausted",
	"manual", "consolidated",
}

// RelocationAllBits are the bits SPEC §6.3 defines.
const RelocationAllBits RelocationStatus = 1<<len(relocationNames) - 1

// Has reports whether every bit of b is set in s.
func (s RelocationStatus) Has(b RelocationStatus) bool { return s&b == b }

// Names returns the names of the bits set in s in SPEC §6.3's words, bit 0
// first; a bit SPEC does not define is named by its value ("0x1000"). The
// zero status has no names (an empty, non-nil slice, so it encodes as [] in
// JSON).
func (s RelocationStatus) Names() []string {
	out := []string{}
	for i := 0; i < 32; i++ {
		b := RelocationStatus(1) << i
		if s&b == 0 {
			continue
		}
		if i < len(relocationNames) {
			out = append(out, relocationNames[i])
		} else {
			out = append(out, fmt.Sprintf("%#x", uint32(b)))
		}
	}
	return out
}

// String returns the names of the set bits joined by "|", or "none".
func (s RelocationStatus) String() string {
	if s == 0 {
		return "none"
	}
	return strings.Join(s.Names(), "|")
}

// ParseRelocationStatus turns names as Names returns them (SPEC §6.3's
// words, or a bit's value such as "0x1000") back into a status. An unknown
// name is an error matching ErrInvalid.
func ParseRelocationStatus(names []string) (RelocationStatus, error) {
	var s RelocationStatus
	for _, n := range names {
		found := false
		for i, known := range relocationNames {
			if n == known {
				s |= 1 << i
				found = true
				break
			}
		}
		if found {
			continue
		}
		var v uint32
		if _, err := fmt.Sscanf(n, "0x%x", &v); err != nil || v == 0 || v&(v-1) != 0 || fmt.Sprintf("%#x", v) != n {
			return 0, Errorf(ErrInvalid, "unknown relocation status flag %q", truncate(n, 80))
		}
		s |= RelocationStatus(v)
	}
	return s, nil
}

// prerequisiteChecks name each prerequisite (SPEC §6.1) by what it checks,
// so that a passing check reads "enough space", not "insufficient-space"
// (the name of the bit it sets when it fails).
var prerequisiteChecks = map[RelocationStatus]string{
	RelocationNotFixedMedia:         "fixed media",
	RelocationUnsupportedFilesystem: "supported file system",
	RelocationInsufficientSpace:     "enough space",
	RelocationKnownFolder:           "not a known folder",
	RelocationPathTooLong:           "path length",
	RelocationInvalidTarget:         "valid target",
}

// PrerequisiteCheck names the prerequisite whose failure sets the flag
// named flag (SPEC §6.3's word, such as "insufficient-space") by what it
// checks ("enough space"); a name that is no prerequisite's comes back as
// it is.
func PrerequisiteCheck(flag string) string {
	s, err := ParseRelocationStatus([]string{flag})
	if err != nil {
		return flag
	}
	if c, ok := prerequisiteChecks[s]; ok {
		return c
	}
	return flag
}
