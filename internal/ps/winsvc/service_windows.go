package winsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// Install creates the service of c (see the package doc) and its event
// source. It fails, changing nothing, when a service of that name exists
// or a part of it cannot be set up — but for the recovery actions where
// the service control manager has none (ERROR_INVALID_LEVEL: not Windows,
// which has them since 2000, but an emulation such as Wine): the service
// is installed without them and the returned warning says so.
func Install(c Config) (warning string, err error) {
	c = c.withDefaults()
	m, err := mgr.Connect()
	if err != nil {
		return "", fmt.Errorf("connect to the service control manager: %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(c.Name); err == nil {
		s.Close()
		return "", fmt.Errorf("service %s exists already (uninstall it first)", c.Name)
	}
	s, err := m.CreateService(c.Name, c.Exe, mgr.Config{
		DisplayName:  c.DisplayName,
		Description:  c.Description,
		StartType:    mgr.StartAutomatic,
		ErrorControl: mgr.ErrorNormal,
	}, c.Args...)
	if err != nil {
		return "", fmt.Errorf("create service %s: %w", c.Name, err)
	}
	defer s.Close()
	undo := func(cause error) (string, error) {
		if err := s.Delete(); err != nil {
			return "", fmt.Errorf("%w (and removing the half-installed service failed: %v)", cause, err)
		}
		return "", cause
	}
	actions := make([]mgr.RecoveryAction, len(c.Recovery))
	for i, d := range c.Recovery {
		actions[i] = mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: d}
	}
	err = s.SetRecoveryActions(actions, uint32(c.ResetAfter/time.Second))
	if err == nil {
		err = s.SetRecoveryActionsOnNonCrashFailures(true)
	}
	switch {
	case errors.Is(err, windows.ERROR_INVALID_LEVEL):
		warning = fmt.Sprintf("service %s installed WITHOUT recovery actions: this service control manager has none (%v); it will not be restarted when it fails", c.Name, err)
	case err != nil:
		return undo(fmt.Errorf("set the recovery actions of service %s: %w", c.Name, err))
	}
	if err := eventlog.InstallAsEventCreate(c.Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		// An event source left by an earlier installation is fine.
		if !isExists(err) {
			return undo(fmt.Errorf("install event source %s: %w", c.Name, err))
		}
	}
	return warning, nil
}

// isExists matches the error eventlog.InstallAsEventCreate gives for an
// existing source (it says so in words only).
func isExists(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "already exists")
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.DisplayName == "" {
		c.DisplayName = "Wharf Package Server"
	}
	if c.Description == "" {
		c.Description = "Keeps Wharf packages on this server's disks and serves them to the clients of its site."
	}
	if len(c.Recovery) == 0 {
		c.Recovery = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute}
	}
	if c.ResetAfter <= 0 {
		c.ResetAfter = 24 * time.Hour
	}
	return c
}

// Uninstall stops the service if it runs, deletes it and its event source.
func Uninstall(name string) error {
	m, s, err := open(name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if err := stop(s, name); err != nil {
			return err
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("delete service %s: %w", name, err)
	}
	if err := eventlog.Remove(name); err != nil && !errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		return fmt.Errorf("remove event source %s: %w", name, err)
	}
	return nil
}

// Start starts the service and waits until it runs, or until it stopped
// again (a failed start: its exit code is in the error).
func Start(name string) error {
	m, s, err := open(name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := s.Start(); err != nil {
		return fmt.Errorf("start service %s: %w", name, err)
	}
	st, err := waitState(s, StopTimeout, svc.Running, svc.Stopped)
	if err != nil {
		return fmt.Errorf("start service %s: %w", name, err)
	}
	if st.State != svc.Running {
		return fmt.Errorf("service %s stopped right after its start (exit code %d, service exit code %d); see its log",
			name, st.Win32ExitCode, st.ServiceSpecificExitCode)
	}
	return nil
}

// Stop asks the service to stop and waits until it has.
func Stop(name string) error {
	m, s, err := open(name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	return stop(s, name)
}

func stop(s *mgr.Service, name string) error {
	st, err := s.Control(svc.Stop)
	if err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		return fmt.Errorf("stop service %s: %w", name, err)
	}
	if err == nil && st.State == svc.Stopped {
		return nil
	}
	if _, err := waitState(s, StopTimeout, svc.Stopped); err != nil {
		return fmt.Errorf("stop service %s: %w", name, err)
	}
	return nil
}

// State reports the service's state ("running", "stopped", ...).
func State(name string) (string, error) {
	m, s, err := open(name)
	if err != nil {
		return "", err
	}
	defer m.Disconnect()
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return "", fmt.Errorf("query service %s: %w", name, err)
	}
	return stateName(st.State), nil
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "stopped"
	case svc.StartPending:
		return "starting"
	case svc.StopPending:
		return "stopping"
	case svc.Running:
		return "running"
	case svc.ContinuePending, svc.PausePending, svc.Paused:
		return "paused"
	}
	return fmt.Sprintf("state %d", s)
}

func open(name string) (*mgr.Mgr, *mgr.Service, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the service control manager: %w", err)
	}
	s, err := m.OpenService(name)
	if err != nil {
		m.Disconnect()
		return nil, nil, fmt.Errorf("open service %s: %w", name, err)
	}
	return m, s, nil
}

// waitState polls the service's state every 100 ms until it is one of want
// or timeout passed. The service control manager offers no notification a
// caller can wait on without a callback thread, so this polls.
func waitState(s *mgr.Service, timeout time.Duration, want ...svc.State) (svc.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.Query()
		if err != nil {
			return st, err
		}
		for _, w := range want {
			if st.State == w {
				return st, nil
			}
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("still %s after %s", stateName(st.State), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// IsService reports whether the process was started by the service control
// manager.
func IsService() (bool, error) { return svc.IsWindowsService() }

// Run runs serve as the service name under the service control manager
// and returns when the service stopped (see the package doc). The service
// is reported running once serve calls ready (the Package Server serves),
// starting until then. The logger given to serve writes JSON lines to
// logPath (rotated at 10 MiB) and, from Warn up, to the event log under
// name; level is the file's level.
func Run(name, logPath string, level slog.Level, serve func(ctx context.Context, log *slog.Logger, ready func()) error) error {
	file, err := openRotating(logPath, 10<<20)
	if err != nil {
		return err
	}
	defer file.Close()
	elog, err := eventlog.Open(name)
	if err != nil {
		return fmt.Errorf("open event log source %s: %w", name, err)
	}
	defer elog.Close()
	log := slog.New(tee{
		slog.NewJSONHandler(file, &slog.HandlerOptions{Level: level}),
		&eventHandler{log: elog, level: slog.LevelWarn},
	}).With("service", name)
	h := &handler{name: name, serve: serve, log: log, events: elog}
	if err := svc.Run(name, h); err != nil {
		log.Error("service control manager", "err", err)
		return fmt.Errorf("run service %s: %w", name, err)
	}
	return h.err
}

// handler is the svc.Handler of Run.
type handler struct {
	name   string
	serve  func(ctx context.Context, log *slog.Logger, ready func()) error
	log    *slog.Logger
	events eventWriter
	err    error // what serve returned
}

// eventWriter is the part of *eventlog.Log the handler writes with.
type eventWriter interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// Event IDs.
const (
	eventInfo    = 1
	eventWarning = 2
	eventError   = 3
	eventStart   = 10
	eventStop    = 11
)

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	const startHint = 30_000 // ms between checkpoints the manager waits for
	status <- svc.Status{State: svc.StartPending, WaitHint: startHint}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	readyc := make(chan struct{})
	var once sync.Once
	go func() { done <- h.serve(ctx, h.log, func() { once.Do(func() { close(readyc) }) }) }()
	const accepts = svc.AcceptStop | svc.AcceptShutdown
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	running := false
	for checkpoint := uint32(1); ; {
		select {
		case <-readyc:
			readyc = nil
			running = true
			status <- svc.Status{State: svc.Running, Accepts: accepts}
			h.log.Info("service running")
			_ = h.events.Info(eventStart, fmt.Sprintf("Service %s started.", h.name))
		case <-tick.C:
			if !running {
				// Starting (recovering the journal, enrolling): tell the
				// manager the start goes on.
				checkpoint++
				status <- svc.Status{State: svc.StartPending, CheckPoint: checkpoint, WaitHint: startHint}
			}
		case err := <-done:
			h.err = err
			if err != nil {
				h.log.Error("Package Server stopped with an error; the service control manager restarts it", "err", err)
				_ = h.events.Error(eventStop, fmt.Sprintf("Service %s stopped with an error: %v", h.name, err))
				return true, 1
			}
			h.log.Info("Package Server stopped by itself")
			_ = h.events.Info(eventStop, fmt.Sprintf("Service %s stopped.", h.name))
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				h.log.Info("stop requested", "by", cmdName(c.Cmd))
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(StopTimeout / time.Millisecond)}
				cancel()
				err := h.waitStopped(done, status)
				h.err = err
				if err != nil {
					h.log.Error("Package Server stopped with an error", "err", err)
					_ = h.events.Error(eventStop, fmt.Sprintf("Service %s stopped with an error: %v", h.name, err))
					return true, 1
				}
				h.log.Info("service stopped cleanly")
				_ = h.events.Info(eventStop, fmt.Sprintf("Service %s stopped cleanly.", h.name))
				return false, 0
			}
		}
	}
}

// waitStopped waits for serve to return after its context was canceled,
// telling the service control manager every second that the stop goes on.
func (h *handler) waitStopped(done <-chan error, status chan<- svc.Status) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for checkpoint := uint32(1); ; checkpoint++ {
		select {
		case err := <-done:
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			return err
		case <-tick.C:
			status <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: uint32(StopTimeout / time.Millisecond)}
		}
	}
}

func cmdName(c svc.Cmd) string {
	if c == svc.Shutdown {
		return "system shutdown"
	}
	return "service stop"
}

// eventHandler is a slog.Handler writing records of level and up to the
// event log: the message and its attributes as text, as an error, warning
// or information event.
type eventHandler struct {
	log   eventWriter
	level slog.Level
	attrs []slog.Attr
	group string
}

func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	add := func(a slog.Attr) bool {
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		msg += fmt.Sprintf(" %s=%v", key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	switch {
	case r.Level >= slog.LevelError:
		return h.log.Error(eventError, msg)
	case r.Level >= slog.LevelWarn:
		return h.log.Warning(eventWarning, msg)
	}
	return h.log.Info(eventInfo, msg)
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

// tee is a slog.Handler that hands each record to every handler enabled
// for it.
type tee []slog.Handler

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t tee) WithGroup(name string) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}
