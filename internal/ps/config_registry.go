package ps

import "github.com/wharf-project/wharf/internal/ps/regsettings"

// LoadRegistry reads over c, on Windows, the relocation settings an
// administrator set in the registry the way the seed article describes
// (HKLM\SOFTWARE\Wharf\Package Server, values "Package Storage Relocation
// Maximum Attempts" and "Package Storage Relocation Interval (min)"; see
// package regsettings), and returns what it found, for the log. Elsewhere
// it finds nothing.
//
// Call it on DefaultConfig before LoadFile and the flags: the precedence is
// defaults < registry < --config file < flags. The registry is the
// machine-wide setting (Group Policy can push it); the config file and the
// command line name one installation's choice explicitly, so they win.
func (c *Config) LoadRegistry() (regsettings.Settings, error) {
	s, err := regsettings.Read()
	if err != nil {
		return regsettings.Settings{}, err
	}
	c.applyRegistry(s)
	return s, nil
}

func (c *Config) applyRegistry(s regsettings.Settings) {
	if s.MaxAttempts != nil {
		c.Relocation.MaxAttempts = *s.MaxAttempts
	}
	if s.Interval != nil {
		c.Relocation.Interval = *s.Interval
	}
}
