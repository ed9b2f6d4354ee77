package catalog

import (
	"context"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Server states in one word, as the console shows them and the NS's
// metrics count them (ServerState).
const (
	ServerOnline     = "online"
	ServerRelocating = "relocating"
	ServerAttention  = "attention" // packages behind links, retries exhausted, or a target refused
	ServerOffline    = "offline"
	ServerNever      = "never" // never contacted since it enrolled
)

// ServerStates lists the states, in the order the console lists them.
var ServerStates = []string{ServerOnline, ServerRelocating, ServerAttention, ServerOffline, ServerNever}

// OfflineAfter is how long after its last contact a server counts as
// offline: two config polls of the global Site Server Settings and some
// slack.
func (c *Catalog) OfflineAfter(ctx context.Context) time.Duration {
	poll := int(DefaultPollWait / time.Second)
	if p, err := c.SiteServerPolicy(ctx, ""); err == nil && p.Settings.PollIntervalSeconds != nil {
		poll = *p.Settings.PollIntervalSeconds
	}
	return 2*time.Duration(poll)*time.Second + 30*time.Second
}

// ServerState says in one word how server s is at now: never contacted,
// offline (no contact for offline), relocating, needing attention (its
// last attempt left packages behind links, ran out of retries or was
// refused), or online.
func ServerState(s api.Server, now time.Time, offline time.Duration) string {
	switch {
	case s.LastContact.IsZero():
		return ServerNever
	case now.Sub(s.LastContact) > offline:
		return ServerOffline
	}
	if ls := s.LocationStatus; ls != nil {
		st := wharf.RelocationStatus(ls.LastStatus)
		switch {
		case ls.Progress != nil || st.Has(wharf.RelocationInProgress):
			return ServerRelocating
		case st&(wharf.RelocationSomeNotMoved|wharf.RelocationRetriesExhausted|wharf.RelocationPrerequisites) != 0:
			return ServerAttention
		}
	}
	return ServerOnline
}

// RelocationState says in one word where a server's relocation stands,
// from its latest Package Location Status: "none" (no attempt reported),
// "running", or how the last attempt ended (api.Outcome*; for an event of
// an older Package Server, from its bits).
func RelocationState(ls *api.LocationStatus) string {
	if ls == nil {
		return "none"
	}
	st := wharf.RelocationStatus(ls.LastStatus)
	switch {
	case ls.Progress != nil || st.Has(wharf.RelocationInProgress):
		return "running"
	case ls.Outcome != "":
		return ls.Outcome
	case st&wharf.RelocationPrerequisites != 0:
		return api.OutcomeRefused
	case st.Has(wharf.RelocationSomeNotMoved):
		return api.OutcomeWarning
	case st.Has(wharf.RelocationSuccess):
		return api.OutcomeSuccess
	}
	return api.OutcomeError
}

// RelocationStates lists every word RelocationState answers.
var RelocationStates = []string{"none", "running", api.OutcomeSuccess, api.OutcomeWarning, api.OutcomeRefused,
	api.OutcomeCanceled, api.OutcomeError}
