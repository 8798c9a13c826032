package apikey

import (
	"net/http"
	"strconv"
	"time"
)

// Policy names in the RateLimit-Policy and RateLimit fields, and in the
// violated-policies of a 429's problem body.
const (
	policyKey   = "key"
	policyOwner = "owner"
	policyQuota = "quota"
	// policyOwnerQuota is Limits.PerOwnerQuota's.
	policyOwnerQuota = "owner-quota"
	// policyCredits is the key's Credits'.
	policyCredits = "credits"
	// policyOwnerCredits is Limits.PerOwnerCredits'.
	policyOwnerCredits = "owner-credits"
)

// Canonical header names, for writing the Header map directly.
const (
	headerRateLimitPolicy = "Ratelimit-Policy"
	headerRateLimit       = "Ratelimit"
)

// maxChecks is the most policies one request is counted against: the
// key's rate limit, its owner's, its quota, its owner's quota, its credits
// and its owner's.
const maxChecks = 6

// A limitCheck is one policy that a request is counted against: a rate
// limit on the Limiter, a quota on the Counter, or a credit balance on the
// Ledger.
type limitCheck struct {
	name string // policy name in the RateLimit fields
	// chargeable is the quota or the balance, and its bit in
	// keyContext.charged; for a rate limit, key is the Limiter's key and
	// bit is 0.
	chargeable
	limit  Limit  // for a rate limit
	cost   int64  // units the request costs
	reason Reason // why a refusal is a refusal
	desc   string // what the client is told on refusal
}

// checks returns, in buf, the policies that apply to a request made with
// k and costing cost units, in the order they are checked: rate limits,
// then quotas, then credits, so that a request refused by one costs
// nothing of those after it. e is k's cache entry, nil for a key without
// one.
func (mw *middleware) checks(k *Key, e *cacheEntry, cost int64, buf *[maxChecks]limitCheck) []limitCheck {
	var lk *limitKeys
	keys := func() *limitKeys {
		if lk == nil {
			lk = limitKeysOf(e, k)
		}
		return lk
	}
	cs := buf[:0]
	l := k.RateLimit
	if l.IsZero() {
		l = mw.limits.Default
	}
	if !l.IsZero() {
		cs = append(cs, limitCheck{name: policyKey, chargeable: chargeable{key: k.LineageID()}, limit: l,
			reason: ReasonRateLimit, desc: descRate})
	}
	if !mw.limits.PerOwner.IsZero() {
		cs = append(cs, limitCheck{name: policyOwner, chargeable: chargeable{key: keys().owner},
			limit: mw.limits.PerOwner, reason: ReasonOwnerRateLimit, desc: descRate})
	}
	if cost <= 0 {
		return cs
	}
	if !k.Quota.IsZero() {
		cs = append(cs, limitCheck{name: policyQuota, chargeable: chargeable{bit: chargedKey, key: keys().quota, quota: k.Quota},
			cost: cost, reason: ReasonQuota, desc: descQuota})
	}
	if q := mw.limits.PerOwnerQuota; !q.IsZero() {
		cs = append(cs, limitCheck{name: policyOwnerQuota, chargeable: chargeable{bit: chargedOwner, key: keys().ownerQuota, quota: q},
			cost: cost, reason: ReasonOwnerQuota, desc: descQuota})
	}
	if !k.Credits.IsZero() {
		cs = append(cs, limitCheck{name: policyCredits, chargeable: chargeable{bit: chargedCredits, key: keys().credits, credits: k.Credits},
			cost: cost, reason: ReasonCredits, desc: descCredits})
	}
	if c := mw.limits.PerOwnerCredits; !c.IsZero() {
		cs = append(cs, limitCheck{name: policyOwnerCredits, chargeable: chargeable{bit: chargedOwnerCredits, key: keys().ownerCredits, credits: c},
			cost: cost, reason: ReasonOwnerCredits, desc: descCredits})
	}
	return cs
}

// cost returns what a request costs by Limits.Cost: 1 without it, 0 for
// a result of 0 or less. It is called only when something needs it: a
// quota, credits, or usage metering.
func (mw *middleware) cost(r *http.Request) int64 {
	if mw.limits.Cost == nil {
		return 1
	}
	return max(mw.limits.Cost(r), 0)
}

// decide asks the Limiter, the Counter or the Ledger about c.
func (mw *middleware) decide(r *http.Request, c *limitCheck) (Decision, error) {
	if c.bit == 0 {
		return mw.limits.Limiter.Allow(r.Context(), c.key, c.limit)
	}
	return c.charge(r.Context(), mw, c.cost)
}

// limit counts the request against checks in order, stopping at the first
// refusal, and writes the RateLimit fields of the policies that answered.
// On a refusal or a backend failure it writes the whole response and
// returns false, having given back any quota units and credits it
// charged. It records in lc what it charged, for a refusal behind the
// middleware to give back, and the error Limits.FailOpen passed over.
//
// The fields' values are lc.fields[0] and lc.fields[1], which live in the
// request's context allocation; both are slices of one string, the
// request's only other allocation here.
func (mw *middleware) limit(q *request, checks []limitCheck, lc *limitedContext) bool {
	var polBuf, rateBuf [192]byte
	pol, rate := polBuf[:0], rateBuf[:0]
	var refused *limitCheck
	var refusedD Decision
	for i := range checks {
		c := &checks[i]
		d, err := mw.decide(q.r, c)
		if err != nil {
			if !mw.limits.FailOpen {
				mw.refundCharged(q.r, checks[:i], &lc.keyContext)
				mw.unavailable(q, ReasonLimiter, err)
				return false
			}
			q.err = err
			continue
		}
		if len(pol) > 0 {
			pol = append(pol, ", "...)
			rate = append(rate, ", "...)
		}
		pq, pw := c.policy(d)
		pol = appendPolicy(pol, c.name, pq, pw)
		rate = appendRateItem(rate, c.name, d, c.bit&chargedCreditsBits == 0 || c.credits.Period != NoRefill)
		if d.Allowed && c.bit != 0 {
			lc.charged |= c.bit
			lc.crossed[crossedIndex(c.bit)] = mw.crossed(d, c.cost)
		}
		if !d.Allowed {
			refused, refusedD = c, d
			break
		}
	}
	if len(pol) > 0 {
		s := string(append(pol, rate...))
		lc.fields[0], lc.fields[1] = s[:len(pol)], s[len(pol):]
		h := q.w.Header()
		h[headerRateLimitPolicy] = lc.fields[0:1:1]
		h[headerRateLimit] = lc.fields[1:2:2]
	}
	if refused != nil {
		// Whatever was charged before the refusal comes back: the
		// quotas and the key's credits ahead of a refusing balance.
		mw.refundCharged(q.r, checks, &lc.keyContext)
		mw.reject(q, OutcomeLimited, refused.reason, "", &AuthError{Status: http.StatusTooManyRequests,
			Description: refused.desc, RetryAfter: refusalWait(refused.reason, refusedD), Policy: refused.name})
		return false
	}
	lc.err = q.err
	return true
}

// refusalWait returns the Retry-After of a 429 for reason, given the
// Decision that refused: for a rate limit or a quota, the time until the
// request could succeed (the window's end when the Decision has no
// RetryAfter), at least a second; for credits, the time until a refill
// holds the cost, or 0, no Retry-After, when none will (only a top-up
// helps).
func refusalWait(reason Reason, d Decision) time.Duration {
	if reason == ReasonCredits || reason == ReasonOwnerCredits {
		if d.RetryAfter <= 0 {
			return 0
		}
		return max(d.RetryAfter, time.Second)
	}
	wait := d.RetryAfter
	if wait <= 0 {
		wait = d.Reset
	}
	return max(wait, time.Second)
}

// policyOf returns the policy name of a 429's reason, for Cost's
// refusals.
func policyOf(reason Reason) string {
	switch reason {
	case ReasonOwnerQuota:
		return policyOwnerQuota
	case ReasonCredits:
		return policyCredits
	case ReasonOwnerCredits:
		return policyOwnerCredits
	}
	return policyQuota
}

// refundCharged gives back what checks charged to quotas (when the
// Counter is a Refunder) and balances, for a request refused after the
// charge. A failed refund is not reported: the request is refused either
// way.
func (mw *middleware) refundCharged(r *http.Request, checks []limitCheck, kc *keyContext) {
	for i := range checks {
		c := &checks[i]
		if c.bit == 0 || kc.charged&c.bit == 0 {
			continue
		}
		kc.charged &^= c.bit
		kc.crossed[crossedIndex(c.bit)] = 0
		_ = c.refund(r.Context(), mw, c.cost)
	}
}

// policy returns the quota and window (seconds; 0 for none) of c's
// RateLimit-Policy item, given its Decision.
func (c *limitCheck) policy(d Decision) (q, w int64) {
	switch {
	case c.bit == 0:
		return limitPolicy(c.limit)
	case c.bit&chargedCreditsBits != 0:
		return creditsPolicy(c.credits, d)
	}
	return quotaPolicy(c.quota)
}

// The RateLimit-Policy field (draft-ietf-httpapi-ratelimit-headers-11,
// section 3) describes each policy as a quota q of requests per window of
// w seconds, w a whole number of seconds, at least 1: the draft has no
// sub-second windows. The middleware reads "q per w" as "at most q
// requests in any w seconds, however they are spread", and advertises only
// what the limiter then always allows: a client that keeps to the policy
// is never refused by it. Within that, it advertises the fastest rate.
//
// A token bucket (Limit) of BurstSize B that refills one token every
// I = Period/Rate allows a request pattern with at most q in any w seconds
// whenever q ≤ B (a burst of q at once fits) and q×I ≤ w (each window
// refills what the last one took). Its policy is therefore q = B and w =
// B×I, the time the bucket takes to refill, rounded up to whole seconds;
// or, if it describes a faster rate, w = B×I rounded down and q = w/I
// rounded down. Examples:
//
//	100/s             q=100;w=1     (exact)
//	1000/m,burst=50   q=50;w=3      (exact: 50 every 3s is 1000 a minute)
//	20/s,burst=5      q=5;w=1       (the bucket holds 5: 5 a second, not 20)
//	10/100ms          q=10;w=1      (100/s sustained, but at most 10 at once)
//	1/1500ms          q=1;w=2       (2 per 3s would allow 2 at once)
//	100/1500ms        q=66;w=1
//
// Where B×I is under a second or not whole, the advertised rate is below
// the sustained one; the RateLimit field (r, what the bucket holds now,
// and t) tells a client the rest.
//
// A quota (Quota) counts fixed windows of Period aligned to the epoch. Any
// w ≥ Period seconds contains a whole window, and a burst of q may land
// in one window, so its policy is q = Limit and w = Period rounded up to
// whole seconds: "10/100ms" is q=10;w=1, "1/1500ms" q=1;w=2. A calendar
// month ("N/month") is q=N;w=2678400, 31 days.

// limitPolicy returns the quota and window (seconds) of l's
// RateLimit-Policy item. An l no limiter can apply gives q=0;w=1.
func limitPolicy(l Limit) (q, w int64) {
	interval, refill, err := l.GCRA()
	if err != nil {
		return 0, 1
	}
	q, w = int64(l.BurstSize()), max(ceilSeconds(refill), 1)
	if wf := int64(refill / time.Second); wf >= 1 && wf < w {
		qf := min(q, int64(time.Duration(wf)*time.Second/interval))
		if float64(qf)/float64(wf) > float64(q)/float64(w) {
			return qf, wf
		}
	}
	return q, w
}

// quotaPolicy returns the quota and window (seconds) of q's
// RateLimit-Policy item. A calendar month is advertised as 31 days, the
// longest: any 31 days hold a whole month's window.
func quotaPolicy(q Quota) (int64, int64) {
	if q.Period == MonthPeriod {
		return q.Limit, 31 * 24 * 3600
	}
	return q.Limit, max(ceilSeconds(q.Period), 1)
}

// creditsPolicy returns the quota and window (seconds) of the
// RateLimit-Policy item of a balance under c that the Ledger described in
// d: its capacity (the period's grant and the top-ups), per the refill
// period, a calendar month as 31 days. A NoRefill balance has no window:
// w = 0, which appendPolicy leaves out (w is optional in the draft).
func creditsPolicy(c Credits, d Decision) (int64, int64) {
	switch c.Period {
	case NoRefill:
		return max(d.Limit, 0), 0
	case MonthPeriod:
		return max(d.Limit, 0), 31 * 24 * 3600
	}
	return max(d.Limit, 0), max(ceilSeconds(c.Period), 1)
}

// appendPolicy appends a RateLimit-Policy item: quota q per window w,
// without w when w is 0.
//
//	"key";q=100;w=60
func appendPolicy(b []byte, name string, q, w int64) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, q, 10)
	if w == 0 {
		return b
	}
	b = append(b, ";w="...)
	return strconv.AppendInt(b, w, 10)
}

// appendRateItem appends a RateLimit item: what remains and, with reset,
// how many seconds until the policy resets (a NoRefill balance never
// does, and has no t).
//
//	"key";r=42;t=17
func appendRateItem(b []byte, name string, d Decision, reset bool) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, max(d.Remaining, 0), 10)
	if !reset {
		return b
	}
	b = append(b, ";t="...)
	return strconv.AppendInt(b, ceilSeconds(d.Reset), 10)
}
