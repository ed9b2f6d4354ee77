package wharf

import (
	"errors"
	"slices"
	"testing"
)

func TestRelocationStatusBits(t *testing.T) {
	// SPEC §6.3, row by row.
	want := []struct {
		bit  RelocationStatus
		val  uint32
		name string
	}{
		{RelocationSuccess, 0x001, "success"},
		{RelocationSomeNotMoved, 0x002, "some-not-moved"},
		{RelocationInProgress, 0x004, "in-progress"},
		{RelocationNotFixedMedia, 0x008, "not-fixed-media"},
		{RelocationUnsupportedFilesystem, 0x010, "unsupported-filesystem"},
		{RelocationInsufficientSpace, 0x020, "insufficient-space"},
		{RelocationKnownFolder, 0x040, "known-folder"},
		{RelocationPathTooLong, 0x080, "path-too-long"},
		{RelocationInvalidTarget, 0x100, "invalid-target"},
		{RelocationRetriesExhausted, 0x200, "retries-exhausted"},
		{RelocationManual, 0x400, "manual"},
		{RelocationConsolidated, 0x800, "consolidated"},
	}
	for _, w := range want {
		if uint32(w.bit) != w.val {
			t.Errorf("%s = %#x, want %#x", w.name, uint32(w.bit), w.val)
		}
		if got := w.bit.Names(); !slices.Equal(got, []string{w.name}) {
			t.Errorf("%#x.Names() = %q, want [%q]", w.val, got, w.name)
		}
		if got := w.bit.String(); got != w.name {
			t.Errorf("%#x.String() = %q, want %q", w.val, got, w.name)
		}
	}
	if RelocationAllBits != 0xfff {
		t.Errorf("RelocationAllBits = %#x, want 0xfff", uint32(RelocationAllBits))
	}
	if RelocationPrerequisites != 0x1f8 {
		t.Errorf("RelocationPrerequisites = %#x, want 0x1f8", uint32(RelocationPrerequisites))
	}
}

func TestRelocationStatusNames(t *testing.T) {
	s := RelocationInsufficientSpace | RelocationKnownFolder | RelocationManual | 1<<14
	got := s.Names()
	want := []string{"insufficient-space", "known-folder", "manual", "0x4000"}
	if !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	if s.String() != "insufficient-space|known-folder|manual|0x4000" {
		t.Errorf("String() = %q", s.String())
	}
	back, err := ParseRelocationStatus(got)
	if err != nil || back != s {
		t.Errorf("ParseRelocationStatus(%q) = %v, %v; want %v", got, back, err, s)
	}
	if n := RelocationStatus(0).Names(); n == nil || len(n) != 0 {
		t.Errorf("zero Names() = %#v, want an empty non-nil slice", n)
	}
	if RelocationStatus(0).String() != "none" {
		t.Errorf("zero String() = %q", RelocationStatus(0).String())
	}
	if !s.Has(RelocationKnownFolder|RelocationManual) || s.Has(RelocationSuccess) {
		t.Error("Has is wrong")
	}
	for _, bad := range []string{"sucess", "0x3", "0x0", "0X10", ""} {
		if _, err := ParseRelocationStatus([]string{bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRelocationStatus(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
