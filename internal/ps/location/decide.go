package location

import (
	"time"

	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/wharf"
)

// KindCatchUp is the kind of the attempt that moves packages which became
// ready in the old location after the attempt that left it ended; it is
// counted and reported as a resume.
const KindCatchUp = "catch-up"

// situation is everything a decision looks at.
type situation struct {
	st         store.RelocationState // the persisted counters
	desired    string                // where the store should be (desiredLocked)
	manual     bool                  // a manual retry is pending
	lastFailed bool                  // the last attempt left packages neither moved nor linked
	resumeAt   time.Time             // an attempt that failed runs again from then on
	catchUp    bool                  // packages became ready in the old location
	now        time.Time
}

// action is what a decision says: start an attempt, or wait.
type action struct {
	start         bool
	kind          string // Kind*
	target        string
	retry, manual bool
	from          string        // the request's From instead of the storage path (a catch-up)
	wait          time.Duration // when nothing starts: when to decide again (0: when woken)
}

// decide applies the rules of the package doc ("When an attempt runs") to
// s, while no attempt runs. It has no effects: the caller starts what it
// says.
func decide(s situation) action {
	st, d := s.st, s.desired
	switch {
	case st.Running && samePath(d, st.LastTried):
		return action{start: true, kind: KindResume, target: d, retry: st.RunRetry, manual: st.RunManual}
	case s.manual:
		retry := samePath(d, st.Target) && samePath(st.Target, st.StoragePath) && !s.lastFailed
		return action{start: true, kind: KindManual, target: d, retry: retry, manual: true}
	case !samePath(d, st.Target) || st.Running:
		if !st.Running && samePath(d, st.LastTried) && st.LastStatus&wharf.RelocationPrerequisites != 0 {
			return action{} // refused: waits for a manual retry or another location
		}
		return action{start: true, kind: KindPolicy, target: d}
	case !samePath(st.Target, st.StoragePath):
		if s.now.Before(s.resumeAt) {
			return action{wait: s.resumeAt.Sub(s.now)}
		}
		return action{start: true, kind: KindResume, target: st.Target}
	case s.catchUp:
		return action{start: true, kind: KindCatchUp, target: st.Target, from: st.From}
	case !st.NextRetry.IsZero():
		if s.now.Before(st.NextRetry) {
			return action{wait: st.NextRetry.Sub(s.now)}
		}
		return action{start: true, kind: KindAutomatic, target: st.StoragePath, retry: true}
	}
	return action{}
}
