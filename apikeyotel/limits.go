package apikeyotel

import (
	"context"
	"strings"

	"github.com/apikeykit/apikey"
)

// Policies and decisions of the limiter and quota metrics, as indexes
// into policies and decisions.
const (
	policyKey = iota
	policyOwner
	policyFailedAuth
)

const (
	decisionAllowed = iota
	decisionLimited
	decisionError
)

var (
	policies  = [...]string{policyKey: "key", policyOwner: "owner", policyFailedAuth: "failed_auth"}
	decisions = [...]string{decisionAllowed: "allowed", decisionLimited: "limited", decisionError: "error"}
)

// Limiter returns l counting its decisions in apikey.limiter.decisions,
// for apikey.Limits.Limiter. The policy is told from the limiter key the
// middleware uses: "owner:…" for Limits.PerOwner, "authfail:…" for
// Limits.FailedAuth, a key ID for the key's own limit.
func (a *Adapter) Limiter(l apikey.Limiter) apikey.Limiter { return &limiter{a: a, l: l} }

type limiter struct {
	a *Adapter
	l apikey.Limiter
}

func (l *limiter) Allow(ctx context.Context, key string, limit apikey.Limit) (apikey.Decision, error) {
	d, err := l.l.Allow(ctx, key, limit)
	policy := policyKey
	switch {
	case strings.HasPrefix(key, "owner:"):
		policy = policyOwner
	case strings.HasPrefix(key, "authfail:"):
		policy = policyFailedAuth
	}
	l.a.limits[policy][decision(d, err)].Add(1)
	return d, err
}

// Counter returns c counting its decisions in apikey.quota.decisions, for
// apikey.Limits.Counter. If c is an apikey.Refunder, so is the Counter
// returned, so that refusals by apikey.Require still cost no quota.
func (a *Adapter) Counter(c apikey.Counter) apikey.Counter {
	if r, ok := c.(apikey.Refunder); ok {
		return &refundingCounter{counter{a: a, c: c}, r}
	}
	return &counter{a: a, c: c}
}

type counter struct {
	a *Adapter
	c apikey.Counter
}

func (c *counter) Add(ctx context.Context, key string, q apikey.Quota, n int64) (apikey.Decision, error) {
	d, err := c.c.Add(ctx, key, q, n)
	c.a.quotas[decision(d, err)].Add(1)
	return d, err
}

type refundingCounter struct {
	counter
	r apikey.Refunder
}

func (c *refundingCounter) Refund(ctx context.Context, key string, q apikey.Quota, n int64) error {
	return c.r.Refund(ctx, key, q, n)
}

// Ledger returns l counting the decisions of its Spends in
// apikey.credits.decisions, for apikey.Limits.Ledger. Refunds and top-ups
// are passed through uncounted.
func (a *Adapter) Ledger(l apikey.Ledger) apikey.Ledger { return &ledger{Ledger: l, a: a} }

type ledger struct {
	apikey.Ledger
	a *Adapter
}

func (l *ledger) Spend(ctx context.Context, key string, c apikey.Credits, n int64) (apikey.Decision, error) {
	d, err := l.Ledger.Spend(ctx, key, c, n)
	l.a.spends[decision(d, err)].Add(1)
	return d, err
}

func decision(d apikey.Decision, err error) int {
	switch {
	case err != nil:
		return decisionError
	case d.Allowed:
		return decisionAllowed
	}
	return decisionLimited
}
