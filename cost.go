package apikey

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// ErrQuotaExceeded is returned by SetCost when the key's quota, or a
// credit balance (see ErrCreditsExhausted), cannot hold the request's new
// cost. Nothing was changed.
var ErrQuotaExceeded = errors.New("apikey: quota exceeded")

// ErrCreditsExhausted is returned by SetCost when the key's credit
// balance or its owner's cannot hold the request's new cost. It wraps
// ErrQuotaExceeded, so that errors.Is(err, ErrQuotaExceeded) holds for
// every refusal. Nothing was changed.
var ErrCreditsExhausted = fmt.Errorf("%w: credits exhausted", ErrQuotaExceeded)

// SetCost sets the cost of the request whose context is ctx to n units,
// after routing: from a per-route middleware (see Cost) or from the
// handler, once it knows what the request costs. The middleware first
// charged what Limits.Cost said (1 without it). The difference is charged
// to the key's Quota, to Limits.PerOwnerQuota, to the key's Credits and to
// Limits.PerOwnerCredits, or given back when n is smaller (to a quota when
// the Counter is a Refunder), and n is what Manager.Usage counts for the
// request. n = 0 makes a request free, for example one the handler
// refuses.
//
// If a quota or a balance cannot hold the difference, SetCost returns an
// error wrapping ErrQuotaExceeded (and ErrCreditsExhausted for a
// balance), gives back what it charged to the others, and the request
// keeps its cost; if the Counter or the Ledger fails, one wrapping
// ErrUnavailable. A negative n is an error wrapping ErrInvalidRequest,
// and so is a ctx that no Middleware authenticated with a key. Nothing
// changes on error.
//
// Call it from the request's goroutine, before the handler returns: the
// cost is read when it does. SetCost is not safe for concurrent use on one
// request.
func SetCost(ctx context.Context, n int64) error {
	_, _, _, err := setCost(ctx, n)
	return err
}

// setCost is SetCost, with the Decision of the last charge and, for
// ErrQuotaExceeded, the Reason and the description of the quota or
// balance that refused it.
func setCost(ctx context.Context, n int64) (Decision, Reason, string, error) {
	if n < 0 {
		return Decision{}, "", "", fmt.Errorf("%w: negative cost %d", ErrInvalidRequest, n)
	}
	c, _ := ctx.Value(contextKey{}).(*keyContext)
	if c == nil || c.key == nil || c.mw == nil || c.mw.m == nil {
		return Decision{}, "", "", fmt.Errorf("%w: SetCost: no key authenticated by a Middleware in the context", ErrInvalidRequest)
	}
	if c.settled.Load() {
		return Decision{}, "", "", fmt.Errorf("%w: SetCost: the request is settled already", ErrInvalidRequest)
	}
	var d Decision
	qs := c.chargeables()
	// Charge everything that must grow first, so that a refusal can be
	// undone by refunds; then give back what shrinks.
	charged := c.charged
	for i := range qs {
		q := &qs[i]
		charge := n - c.cost
		if c.charged&q.bit == 0 {
			// Nothing is on this one yet: a free request, or a backend
			// failure passed over by Limits.FailOpen.
			charge = n
		}
		if charge <= 0 {
			continue
		}
		var err error
		var reason Reason
		var desc string
		d, err = q.charge(ctx, c.mw, charge)
		if err == nil && !d.Allowed {
			var sentinel error
			reason, desc, sentinel = q.refusal()
			err = fmt.Errorf("%w: key %s: %d more units do not fit (%s)", sentinel, c.key.ID, charge, reason)
		} else if err != nil {
			err = storeError("charge "+chargeWhat(q.bit), err)
		}
		if err != nil {
			c.undoCharges(ctx, qs[:i], n, charged)
			c.charged = charged
			return d, reason, desc, err
		}
		c.charged |= q.bit
		c.crossed[crossedIndex(q.bit)] |= c.mw.crossed(d, charge)
	}
	if delta := n - c.cost; delta < 0 {
		for i := range qs {
			q := &qs[i]
			if charged&q.bit == 0 {
				continue
			}
			if err := q.refund(ctx, c.mw, -delta); err != nil {
				return d, "", "", storeError("refund "+chargeWhat(q.bit), err)
			}
		}
	}
	c.cost = n
	return d, "", "", nil
}

// chargeWhat names what a bit of keyContext.charged charges, for errors.
func chargeWhat(bit uint8) string {
	if bit&chargedCreditsBits != 0 {
		return "credits"
	}
	return "quota"
}

// undoCharges gives back what setCost charged to qs for the new cost n,
// when a later quota or balance refused it; charged is c.charged before
// setCost.
func (c *keyContext) undoCharges(ctx context.Context, qs []chargeable, n int64, charged uint8) {
	for i := range qs {
		q := &qs[i]
		charge := n - c.cost
		if charged&q.bit == 0 {
			charge = n
		}
		if charge > 0 {
			_ = q.refund(ctx, c.mw, charge)
		}
	}
}

// Cost returns per-route middleware that sets the cost of every request
// through it to n units (see SetCost), behind Manager.Middleware: a bulk
// endpoint that costs 10 while the rest cost 1, say. When a quota or a
// credit balance cannot hold it, the request is refused with 429 (quota
// or credits exhausted), as the middleware refuses one, and costs
// nothing: the units the middleware charged come back and Manager.Usage
// does not count it. A Counter or Ledger failure is 503, or passes with
// the old cost under Limits.FailOpen. A
// request without a key in its context gets 401, as RequireScopes gives.
// Cost panics if n is negative.
func Cost(n int64) func(http.Handler) http.Handler {
	if n < 0 {
		panic(fmt.Sprintf("apikey: Cost(%d): negative cost", n))
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("apikey: Cost: nil next handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, mw, q := behind(w, r)
			if c == nil || c.key == nil || c.mw == nil {
				mw.refuseNoKey(&q, c)
				return
			}
			d, reason, desc, err := setCost(r.Context(), n)
			switch {
			case err == nil:
				next.ServeHTTP(w, r)
				return
			case errors.Is(err, ErrQuotaExceeded):
				q.key = c.key
				q.prior, _, _ = c.settle(r.Context())
				mw.reject(&q, OutcomeLimited, reason, "", &AuthError{Status: http.StatusTooManyRequests,
					Description: desc, RetryAfter: refusalWait(reason, d), Policy: policyOf(reason)})
				return
			case mw.limits.FailOpen:
				if c.lim != nil {
					c.lim.err = err
				}
				next.ServeHTTP(w, r)
				return
			default:
				q.key = c.key
				q.prior, _, _ = c.settle(r.Context())
				mw.unavailable(&q, ReasonLimiter, err)
			}
		})
	}
}
