//go:build !windows

package regsettings

// Read finds nothing: there is no registry on this system.
func Read() (Settings, error) { return Settings{}, nil }
