package regsettings

import (
	"strings"
	"testing"
	"time"
)

func u(v uint64) *uint64 { return &v }

func TestFromDWORDs(t *testing.T) {
	s, err := fromDWORDs(u(5), u(30))
	if err != nil || s.MaxAttempts == nil || *s.MaxAttempts != 5 || s.Interval == nil || *s.Interval != 30*time.Minute {
		t.Fatalf("fromDWORDs(5, 30) = %v, %v", s, err)
	}
	if got := s.String(); got != "max_attempts=5 interval=30m0s" {
		t.Errorf("String() = %q", got)
	}
	if s, err := fromDWORDs(u(0), nil); err != nil || *s.MaxAttempts != 0 || s.Interval != nil || s.Empty() {
		t.Errorf("no retries at all: %v, %v", s, err)
	}
	if s, err := fromDWORDs(nil, nil); err != nil || !s.Empty() || s.String() != "" {
		t.Errorf("nothing set: %v, %v", s, err)
	}
	for _, tt := range []struct {
		attempts, interval *uint64
		name               string
	}{
		{u(1001), nil, ValueMaxAttempts},
		{u(0xFFFFFFFF), nil, ValueMaxAttempts},
		{nil, u(0), ValueInterval},
		{nil, u(60 * 24 * 367), ValueInterval},
	} {
		if _, err := fromDWORDs(tt.attempts, tt.interval); err == nil || !strings.Contains(err.Error(), tt.name) {
			t.Errorf("fromDWORDs(%v, %v) = %v, want an error naming %q", tt.attempts, tt.interval, err, tt.name)
		}
	}
}
