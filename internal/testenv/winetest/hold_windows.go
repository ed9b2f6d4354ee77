package winetest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/windows"
)

// holdEnv names the file a child test process holds open (see Hold).
const holdEnv = "WHARF_WINETEST_HOLD"

// init makes every test binary that imports this package able to serve as
// the "other process" of Hold: started with holdEnv set, it holds the file
// open until its stdin closes, and exits before any test runs.
func init() {
	spec := os.Getenv(holdEnv)
	if spec == "" {
		return
	}
	share, path, _ := strings.Cut(spec, ":")
	os.Exit(holdMain(path, share == "share-delete"))
}

func holdMain(path string, shareDelete bool) int {
	share := uint32(windows.FILE_SHARE_READ)
	if shareDelete {
		share |= windows.FILE_SHARE_DELETE
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		fmt.Printf("error %v\n", err)
		return 1
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ, share, nil, windows.OPEN_EXISTING,
		windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		fmt.Printf("error open %s: %v\n", path, err)
		return 1
	}
	fmt.Println("held")
	_, _ = io.Copy(io.Discard, os.Stdin)
	windows.CloseHandle(h)
	return 0
}

// Hold makes another process open the file or folder at path for reading
// and keep it open until release is called, as an antivirus or an indexer
// does: sharing read access only, or read and delete access when
// shareDelete is set. It returns once the file is open. The process is the
// test binary itself (see init).
func Hold(path string, shareDelete bool) (release func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	share := "no-delete"
	if shareDelete {
		share = "share-delete"
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+share+":"+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a process to hold %s: %w", path, err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "held" {
		stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("hold %s in another process: %s", path, strings.TrimSpace(line))
	}
	return func() {
		stdin.Close()
		_ = cmd.Wait()
	}, nil
}
