package apikey

import (
	"net/http"
	"strconv"
	"time"
)

// Policy names in the RateLimit-Policy and RateLimit fields.
const (
	policyKey   = "key"
	policyOwner = "owner"
	policyQuota = "quota"
	// policyOwnerQuota is Limits.PerOwnerQuota's.
	policyOwnerQuota = "owner-quota"
)

// Canonical header names, for writing the Header map directly.
const (
	headerRateLimitPolicy = "Ratelimit-Policy"
	headerRateLimit       = "Ratelimit"
)

// maxChecks is the most policies one request is counted against: the
// key's rate limit, its owner's, its quota and its owner's quota.
const maxChecks = 4

// A limitCheck is one policy that a request is counted against: a rate
// limit on the Limiter, or a quota on the Counter.
type limitCheck struct {
	name   string // policy name in the RateLimit fields
	key    string // the Limiter's or the Counter's key
	limit  Limit  // for a rate limit
	quota  Quota  // for a quota
	cost   int64  // units of quota the request costs
	reason Reason // why a refusal is a refusal
	desc   string // what the client is told on refusal
	// bit is the quota's bit in keyContext.charged: chargedKey or
	// chargedOwner; 0 for a rate limit.
	bit uint8
}

// checks returns, in buf, the policies that apply to a request made with
// k and costing cost units, in the order they are checked.
func (mw *middleware) checks(k *Key, cost int64, buf *[maxChecks]limitCheck) []limitCheck {
	cs := buf[:0]
	l := k.RateLimit
	if l.IsZero() {
		l = mw.limits.Default
	}
	if !l.IsZero() {
		cs = append(cs, limitCheck{name: policyKey, key: k.LineageID(), limit: l, reason: ReasonRateLimit, desc: descRate})
	}
	if !mw.limits.PerOwner.IsZero() {
		cs = append(cs, limitCheck{name: policyOwner, key: "owner:" + k.Owner, limit: mw.limits.PerOwner,
			reason: ReasonOwnerRateLimit, desc: descRate})
	}
	if !k.Quota.IsZero() && cost > 0 {
		cs = append(cs, limitCheck{name: policyQuota, key: quotaKey(k), quota: k.Quota, cost: cost,
			reason: ReasonQuota, desc: descQuota, bit: chargedKey})
	}
	if !mw.limits.PerOwnerQuota.IsZero() && cost > 0 {
		cs = append(cs, limitCheck{name: policyOwnerQuota, key: ownerQuotaKey(k), quota: mw.limits.PerOwnerQuota,
			cost: cost, reason: ReasonOwnerQuota, desc: descQuota, bit: chargedOwner})
	}
	return cs
}

// cost returns what a request costs by Limits.Cost: 1 without it, 0 for
// a result of 0 or less. It is called only when something needs it: a
// quota, or usage metering.
func (mw *middleware) cost(r *http.Request) int64 {
	if mw.limits.Cost == nil {
		return 1
	}
	return max(mw.limits.Cost(r), 0)
}

// decide asks the Limiter or the Counter about c.
func (mw *middleware) decide(r *http.Request, c *limitCheck) (Decision, error) {
	if c.quota.IsZero() {
		return mw.limits.Limiter.Allow(r.Context(), c.key, c.limit)
	}
	return mw.limits.Counter.Add(r.Context(), c.key, c.quota, c.cost)
}

// limit counts the request against checks in order, stopping at the first
// refusal, and writes the RateLimit fields of the policies that answered.
// On a refusal or a backend failure it writes the whole response and
// returns false, having given back any quota it charged. It records in lc
// which quotas it charged, for a refusal behind the middleware to give
// back, and the error Limits.FailOpen passed over.
//
// The fields' values are lc.fields[0] and lc.fields[1], which live in the
// request's context allocation; both are slices of one string, the
// request's only other allocation here.
func (mw *middleware) limit(q *request, checks []limitCheck, lc *limitedContext) bool {
	var polBuf, rateBuf [128]byte
	pol, rate := polBuf[:0], rateBuf[:0]
	var refused *limitCheck
	var wait time.Duration
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
		if c.quota.IsZero() {
			q, w := limitPolicy(c.limit)
			pol = appendPolicy(pol, c.name, q, w)
		} else {
			q, w := quotaPolicy(c.quota)
			pol = appendPolicy(pol, c.name, q, w)
		}
		rate = appendRateItem(rate, c.name, d)
		if d.Allowed && !c.quota.IsZero() {
			lc.charged |= c.bit
			if c.bit == chargedKey {
				lc.crossedKey = mw.crossed(d, c.cost)
			} else {
				lc.crossedOwner = mw.crossed(d, c.cost)
			}
		}
		if !d.Allowed {
			refused = c
			wait = d.RetryAfter
			if wait <= 0 {
				wait = d.Reset
			}
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
		// The quotas are checked last: only the owner's quota refuses
		// after a charge, the key's, which comes back.
		mw.refundCharged(q.r, checks, &lc.keyContext)
		mw.reject(q, OutcomeLimited, refused.reason, "", &AuthError{
			Status: http.StatusTooManyRequests, Description: refused.desc, RetryAfter: max(wait, time.Second)})
		return false
	}
	lc.err = q.err
	return true
}

// refundCharged gives back the units that checks charged to quotas, for a
// request refused after the charge, when the Counter is a Refunder. A
// failed refund is not reported: the request is refused either way.
func (mw *middleware) refundCharged(r *http.Request, checks []limitCheck, kc *keyContext) {
	rf, ok := mw.limits.Counter.(Refunder)
	for i := range checks {
		c := &checks[i]
		if kc.charged&c.bit == 0 {
			continue
		}
		kc.charged &^= c.bit
		if ok {
			_ = rf.Refund(r.Context(), c.key, c.quota, c.cost)
		}
	}
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

// appendPolicy appends a RateLimit-Policy item: quota q per window w.
//
//	"key";q=100;w=60
func appendPolicy(b []byte, name string, q, w int64) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, q, 10)
	b = append(b, ";w="...)
	return strconv.AppendInt(b, w, 10)
}

// appendRateItem appends a RateLimit item: what remains and how many
// seconds until the policy resets.
//
//	"key";r=42;t=17
func appendRateItem(b []byte, name string, d Decision) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, max(d.Remaining, 0), 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, ceilSeconds(d.Reset), 10)
}
