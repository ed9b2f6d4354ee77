// Package regsettings reads the Package Server settings an administrator
// sets in the Windows registry, as the seed article's product did:
//
//	HKEY_LOCAL_MACHINE\SOFTWARE\Wharf\Package Server
//	  "Package Storage Relocation Maximum Attempts"  REG_DWORD  automatic retries (relocation.max_attempts)
//	  "Package Storage Relocation Interval (min)"    REG_DWORD  minutes between them (relocation.interval)
//
// Each value is optional; a missing key or value leaves the setting to the
// next source. Precedence, lowest first: the defaults, these registry
// values, the --config file, the command line (see ps.Config.LoadRegistry).
// The key is read in the 64-bit view of the registry. On other systems
// there is no registry and Read finds nothing.
package regsettings

import (
	"fmt"
	"time"
)

// The key and the names of its values.
const (
	Key              = `SOFTWARE\Wharf\Package Server`
	ValueMaxAttempts = "Package Storage Relocation Maximum Attempts"
	ValueInterval    = "Package Storage Relocation Interval (min)"
)

// Settings are the values found; a nil field was not set.
type Settings struct {
	MaxAttempts *int
	Interval    *time.Duration
}

// String lists the values found, for logs: "max_attempts=5 interval=30m0s".
func (s Settings) String() string {
	out := ""
	if s.MaxAttempts != nil {
		out += fmt.Sprintf("max_attempts=%d", *s.MaxAttempts)
	}
	if s.Interval != nil {
		if out != "" {
			out += " "
		}
		out += fmt.Sprintf("interval=%s", *s.Interval)
	}
	return out
}

// Empty reports whether no value was found.
func (s Settings) Empty() bool { return s.MaxAttempts == nil && s.Interval == nil }

// fromDWORDs turns the raw values into Settings, checking them. A nil
// pointer is a value that is not there.
func fromDWORDs(maxAttempts, intervalMin *uint64) (Settings, error) {
	var s Settings
	if maxAttempts != nil {
		if *maxAttempts > 1000 {
			return Settings{}, fmt.Errorf(`registry value HKLM\%s\%s = %d: want 0 to 1000 attempts`, Key, ValueMaxAttempts, *maxAttempts)
		}
		n := int(*maxAttempts)
		s.MaxAttempts = &n
	}
	if intervalMin != nil {
		if *intervalMin == 0 || *intervalMin > 60*24*366 {
			return Settings{}, fmt.Errorf(`registry value HKLM\%s\%s = %d: want 1 minute to a year`, Key, ValueInterval, *intervalMin)
		}
		d := time.Duration(*intervalMin) * time.Minute
		s.Interval = &d
	}
	return s, nil
}
