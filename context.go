package apikey

import (
	"context"
	"math/bits"
	"sync/atomic"
	"time"
)

// FromContext returns the key that authenticated the request whose context
// is ctx, as put there by Manager.Middleware or NewContext. It reports
// false for a request the middleware let through without a key
// (WithAnonymous, WithCORSPreflight). The Key is shared and must not be
// modified.
func FromContext(ctx context.Context) (*Key, bool) {
	c, _ := ctx.Value(contextKey{}).(*keyContext)
	if c == nil || c.key == nil {
		return nil, false
	}
	return c.key, true
}

// NewContext returns a copy of ctx carrying k, as Manager.Middleware does:
// for tests of handlers that read FromContext, or for other transports
// (gRPC, queues) that verify keys themselves.
func NewContext(ctx context.Context, k *Key) context.Context {
	return &keyContext{Context: ctx, key: k}
}

// contextKey is the key of the *keyContext in a request's context.
type contextKey struct{}

// keyContext carries the verified key, and the middleware that verified
// it so that RequireScopes answers in the same format and reports to the
// same hook. It is one allocation where context.WithValue of a struct
// holding both would be two.
//
// It also holds what the middleware left to settle once the handlers
// behind it have run: its Event, unless a refusal by RequireScopes and
// friends is reported instead, and the quota units and credits charged,
// which such a refusal gives back.
type keyContext struct {
	context.Context
	key *Key        // nil for a request let through without a key
	mw  *middleware // nil when made by NewContext

	// settled is set by whoever settles the request first: the
	// middleware, reporting its Event and counting its usage once the
	// next handler returns, or a refusal behind it, which refunds the
	// quotas and credits and reports instead.
	settled atomic.Bool
	// charged says which quotas and balances hold cost units of this
	// request (chargedKey, chargedOwner, chargedCredits,
	// chargedOwnerCredits), for a refusal to give back or SetCost to
	// adjust.
	charged uint8
	// crossed holds, for each bit of charged in order, the bits of the
	// thresholds (WithQuotaThresholds) the request's charges crossed,
	// reported once the request passes.
	crossed [4]uint8
	decided time.Duration // the middleware's own time, for the Event
	cost    int64         // the request's units: what usage counts
	// use and hour say where the request's usage counts: in the slots of
	// the key's cache entry (nil: the usage meter's own), in the hour the
	// key was verified (see hourOf).
	use  *usageSlots
	hour int64
	lim  *limitedContext // the rest of the allocation, if limited
}

func (c *keyContext) Value(k any) any {
	if _, ok := k.(contextKey); ok {
		return c
	}
	return c.Context.Value(k)
}

func (c *keyContext) String() string { return "apikey.keyContext" }

// settle claims the request for a refusal behind the middleware: it gives
// back the quota units the middleware charged, when the Counter is a
// Refunder, and the credits, and returns the time the middleware took,
// which the refusal's Event adds to its own, and the error to report: a
// refund's, or the limiter error that Limits.FailOpen passed over. It
// returns false if the request was settled already.
func (c *keyContext) settle(ctx context.Context) (decided time.Duration, ok bool, err error) {
	if c.mw == nil || !c.settled.CompareAndSwap(false, true) {
		return 0, false, nil
	}
	if lc := c.lim; lc != nil {
		err = lc.err
	}
	if c.charged != 0 && c.cost > 0 {
		for _, q := range c.chargeables() {
			if c.charged&q.bit == 0 {
				continue
			}
			if rerr := q.refund(ctx, c.mw, c.cost); rerr != nil {
				err = rerr
			}
		}
		c.charged = 0
	}
	return c.decided, true, err
}

// Bits of keyContext.charged, in the order the middleware charges them.
const (
	chargedKey          uint8 = 1 << iota // the key's Quota, under quotaKey
	chargedOwner                          // Limits.PerOwnerQuota, under ownerQuotaKey
	chargedCredits                        // the key's Credits, under CreditsKey
	chargedOwnerCredits                   // Limits.PerOwnerCredits, under OwnerCreditsKey
)

// chargedCreditsBits are the bits of charged that are credit balances.
const chargedCreditsBits = chargedCredits | chargedOwnerCredits

// crossedIndex returns the index in keyContext.crossed of a bit of
// charged.
func crossedIndex(bit uint8) int { return bits.TrailingZeros8(bit) }

// A chargeable is a quota or a credit balance a request may be charged
// to.
type chargeable struct {
	bit     uint8
	key     string  // the Counter's or the Ledger's key
	quota   Quota   // for a quota
	credits Credits // for a balance (bit in chargedCreditsBits)
}

// charge adds n units to the quota, or spends them from the balance.
func (q *chargeable) charge(ctx context.Context, mw *middleware, n int64) (Decision, error) {
	if q.bit&chargedCreditsBits != 0 {
		return mw.limits.Ledger.Spend(ctx, q.key, q.credits, n)
	}
	return mw.limits.Counter.Add(ctx, q.key, q.quota, n)
}

// refund gives back n units charged: to the balance, or to the quota when
// the Counter is a Refunder (with another Counter, they stay spent).
func (q *chargeable) refund(ctx context.Context, mw *middleware, n int64) error {
	if q.bit&chargedCreditsBits != 0 {
		return mw.limits.Ledger.Refund(ctx, q.key, q.credits, n)
	}
	if r, ok := mw.limits.Counter.(Refunder); ok {
		return r.Refund(ctx, q.key, q.quota, n)
	}
	return nil
}

// refusal returns the Reason, description and sentinel error of a charge
// the quota or balance refused.
func (q *chargeable) refusal() (Reason, string, error) {
	switch q.bit {
	case chargedOwner:
		return ReasonOwnerQuota, descQuota, ErrQuotaExceeded
	case chargedCredits:
		return ReasonCredits, descCredits, ErrCreditsExhausted
	case chargedOwnerCredits:
		return ReasonOwnerCredits, descCredits, ErrCreditsExhausted
	}
	return ReasonQuota, descQuota, ErrQuotaExceeded
}

// chargeables returns the quotas and balances that apply to c's key, in
// the order the middleware charges them. It allocates their keys: call
// it only off the main path (refusals behind the middleware, SetCost).
func (c *keyContext) chargeables() []chargeable {
	qs := make([]chargeable, 0, 4)
	if !c.key.Quota.IsZero() {
		qs = append(qs, chargeable{bit: chargedKey, key: quotaKey(c.key), quota: c.key.Quota})
	}
	if oq := c.mw.limits.PerOwnerQuota; !oq.IsZero() {
		qs = append(qs, chargeable{bit: chargedOwner, key: ownerQuotaKey(c.key), quota: oq})
	}
	if !c.key.Credits.IsZero() {
		qs = append(qs, chargeable{bit: chargedCredits, key: CreditsKey(c.key), credits: c.key.Credits})
	}
	if oc := c.mw.limits.PerOwnerCredits; !oc.IsZero() {
		qs = append(qs, chargeable{bit: chargedOwnerCredits, key: OwnerCreditsKey(c.key.Owner), credits: oc})
	}
	return qs
}

// limitedContext is a keyContext with room for the response's
// RateLimit-Policy and RateLimit field values, so that a rate-limited
// request allocates them with its context. The request carries a pointer
// to the embedded keyContext, which keeps the whole struct alive; the
// header map refers to fields, which is never written again once set.
type limitedContext struct {
	keyContext
	fields [2]string
	err    error // a limiter error passed over by Limits.FailOpen
}
