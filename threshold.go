package apikey

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// maxThresholds is the most fractions WithQuotaThresholds takes: one bit
// each in keyContext.crossed.
const maxThresholds = 8

// WithQuotaThresholds reports, through the WithOnEvent hook, when a
// request takes a quota's usage to or past a fraction of its Limit (the
// key's Quota or Limits.PerOwnerQuota), or a credit balance's use to or
// past a fraction of its capacity (the key's Credits or
// Limits.PerOwnerCredits), so that a service can warn its customer before
// cutting them off. WithQuotaThresholds(0.8, 1) reports
// the request that uses the 80th unit of a 100-unit quota and the one that
// uses the 100th. Each fraction must be in (0, 1]; at most 8 are taken,
// and duplicates count once. It needs WithOnEvent.
//
// A crossing is one Event with OutcomeQuotaThreshold and
// ReasonQuotaThreshold, the key's KeyID and Owner, Policy "quota",
// "owner-quota", "credits" or "owner-credits", and Threshold the fraction, reported after the
// request's own Event once the next handler returns. It is read from the
// Counter's answer to the request's charge, with no further round trip:
// usage before the charge was below the fraction's units (Limit×fraction,
// rounded up) and after it is not. A Counter adds each charge atomically,
// so within one window exactly one request crosses each fraction, across
// every process that shares the Counter. A request refused after its
// charge (by the owner's quota, by RequireScopes and friends, by Cost)
// reports no crossing, since its units come back; the next request to
// cross reports it. A charge the quota refuses crosses nothing, so a 100%
// threshold is reported only when the last unit is used. Where SetCost
// lowers a request's cost below a threshold it crossed, the fraction can
// be crossed, and reported, again.
//
// For a credit balance the fraction is of the Ledger's Decision's Limit:
// the period's grant plus its top-ups, so that 0.8 is reported when 80%
// of what the period could spend is spent, once per refill period. A
// top-up raises the capacity and lowers the fraction used, so a fraction
// already reported in the period can be crossed, and reported, again.
// A NoRefill balance has one period, its whole life.
func WithQuotaThresholds(fractions ...float64) MiddlewareOption {
	return func(mw *middleware) error {
		if len(fractions) == 0 {
			return fmt.Errorf("%w: WithQuotaThresholds with no fraction", ErrInvalidRequest)
		}
		fs := slices.Clone(fractions)
		for _, f := range fs {
			if !(f > 0 && f <= 1) {
				return fmt.Errorf("%w: WithQuotaThresholds(%v): want fractions in (0, 1]", ErrInvalidRequest, f)
			}
		}
		slices.Sort(fs)
		fs = slices.Compact(fs)
		if len(fs) > maxThresholds {
			return fmt.Errorf("%w: WithQuotaThresholds: %d fractions, at most %d", ErrInvalidRequest, len(fs), maxThresholds)
		}
		mw.thresholds = fs
		return nil
	}
}

// errThresholdsNeedEvents is newMiddleware's error for thresholds without
// a hook to report them to.
var errThresholdsNeedEvents = errors.New("apikey: WithQuotaThresholds needs WithOnEvent")

// crossed returns the bits of the thresholds that a charge of cost units
// crossed, given the Counter's Decision on it.
func (mw *middleware) crossed(d Decision, cost int64) uint8 {
	if len(mw.thresholds) == 0 || !d.Allowed || d.Limit <= 0 || cost <= 0 {
		return 0
	}
	after := d.Limit - max(d.Remaining, 0)
	before := after - cost
	var bits uint8
	for i, f := range mw.thresholds {
		t := max(int64(math.Ceil(f*float64(d.Limit))), 1)
		if before < t && t <= after {
			bits |= 1 << i
		}
	}
	return bits
}

// crossedPolicies are the policies of keyContext.crossed, in order.
var crossedPolicies = [4]string{policyQuota, policyOwnerQuota, policyCredits, policyOwnerCredits}

// emitCrossings reports the thresholds kc's request crossed, after its own
// Event.
func (mw *middleware) emitCrossings(q *request, kc *keyContext) {
	for p, bits := range kc.crossed {
		for i, f := range mw.thresholds {
			if bits&(1<<i) == 0 {
				continue
			}
			mw.emit(q, Event{Outcome: OutcomeQuotaThreshold, Reason: ReasonQuotaThreshold, KeyID: kc.key.ID,
				Owner: kc.key.Owner, Policy: crossedPolicies[p], Threshold: f})
		}
	}
}
