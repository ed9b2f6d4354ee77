package regsettings

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// Read reads the values under HKEY_LOCAL_MACHINE\Key. A missing key or
// value is no error; a value of another type than REG_DWORD, or out of
// range, is one, naming the value.
func Read() (Settings, error) { return readFrom(registry.LOCAL_MACHINE, Key) }

func readFrom(root registry.Key, path string) (Settings, error) {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		return Settings{}, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf(`open registry key HKLM\%s: %w`, path, err)
	}
	defer k.Close()
	dword := func(name string) (*uint64, error) {
		v, typ, err := k.GetIntegerValue(name)
		switch {
		case errors.Is(err, windows.ERROR_FILE_NOT_FOUND):
			return nil, nil
		case errors.Is(err, registry.ErrUnexpectedType):
			return nil, fmt.Errorf(`registry value HKLM\%s\%s: want a REG_DWORD, found type %d`, path, name, typ)
		case err != nil:
			return nil, fmt.Errorf(`read registry value HKLM\%s\%s: %w`, path, name, err)
		case typ != registry.DWORD:
			return nil, fmt.Errorf(`registry value HKLM\%s\%s: want a REG_DWORD, found a REG_QWORD`, path, name)
		}
		return &v, nil
	}
	attempts, err := dword(ValueMaxAttempts)
	if err != nil {
		return Settings{}, err
	}
	interval, err := dword(ValueInterval)
	if err != nil {
		return Settings{}, err
	}
	return fromDWORDs(attempts, interval)
}
