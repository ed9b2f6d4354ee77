package location

import (
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/wharf"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	const a, b, c = "/vol/a/Package Delivery", "/vol/b/store", "/vol/c/store"
	at := func(path string) store.RelocationState {
		return store.RelocationState{StoragePath: path, Target: path, LastTried: path}
	}
	with := func(st store.RelocationState, f func(*store.RelocationState)) store.RelocationState {
		f(&st)
		return st
	}
	for _, tc := range []struct {
		name string
		s    situation
		want action
	}{
		{"where it should be: nothing", situation{st: at(a), desired: a, now: now}, action{}},
		{"a new location", situation{st: at(a), desired: b, now: now},
			action{start: true, kind: KindPolicy, target: b}},
		{"resume after a restart", situation{st: with(at(a), func(s *store.RelocationState) {
			s.Running, s.LastTried, s.Target, s.RunRetry = true, b, b, true
		}), desired: b, now: now}, action{start: true, kind: KindResume, target: b, retry: true}},
		{"interrupted, and the policy moved on", situation{st: with(at(a), func(s *store.RelocationState) {
			s.Running, s.LastTried, s.Target = true, b, b
		}), desired: c, now: now}, action{start: true, kind: KindPolicy, target: c}},
		{"manual retry at the location: links only", situation{st: at(b), desired: b, manual: true, now: now},
			action{start: true, kind: KindManual, target: b, retry: true, manual: true}},
		{"manual retry after packages failed: everything", situation{st: at(b), desired: b, manual: true, lastFailed: true, now: now},
			action{start: true, kind: KindManual, target: b, manual: true}},
		{"manual retry toward a new location", situation{st: at(a), desired: b, manual: true, now: now},
			action{start: true, kind: KindManual, target: b, manual: true}},
		{"refused: waits", situation{st: with(at(a), func(s *store.RelocationState) {
			s.LastTried, s.LastStatus = b, wharf.RelocationInsufficientSpace
		}), desired: b, now: now}, action{}},
		{"refused, then another location", situation{st: with(at(a), func(s *store.RelocationState) {
			s.LastTried, s.LastStatus = b, wharf.RelocationInsufficientSpace
		}), desired: c, now: now}, action{start: true, kind: KindPolicy, target: c}},
		{"half-way, backing off", situation{st: with(at(a), func(s *store.RelocationState) { s.Target = b }),
			desired: b, resumeAt: now.Add(time.Minute), now: now}, action{wait: time.Minute}},
		{"half-way, again", situation{st: with(at(a), func(s *store.RelocationState) { s.Target = b }),
			desired: b, resumeAt: now, now: now}, action{start: true, kind: KindResume, target: b}},
		{"catch-up", situation{st: with(at(b), func(s *store.RelocationState) { s.From = a }), desired: b, catchUp: true, now: now},
			action{start: true, kind: KindCatchUp, target: b, from: a}},
		{"retry not due", situation{st: with(at(b), func(s *store.RelocationState) { s.NextRetry = now.Add(15 * time.Minute) }),
			desired: b, now: now}, action{wait: 15 * time.Minute}},
		{"retry due", situation{st: with(at(b), func(s *store.RelocationState) { s.NextRetry = now }), desired: b, now: now},
			action{start: true, kind: KindAutomatic, target: b, retry: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.s); got != tc.want {
				t.Errorf("decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}
