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
)

// Canonical header names, for writing the Header map directly.
const (
	headerRateLimitPolicy = "Ratelimit-Policy"
	headerRateLimit       = "Ratelimit"
)

// maxChecks is the most policies one request is counted against: the
// key's rate limit, its owner's and its quota.
const maxChecks = 3

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
}

// checks returns, in buf, the policies that apply to a request made with
// k, in the order they are checked.
func (mw *middleware) checks(r *http.Request, k *Key, buf *[maxChecks]limitCheck) []limitCheck {
	cs := buf[:0]
	l := k.RateLimit
	if l.IsZero() {
		l = mw.limits.Default
	}
	if !l.IsZero() {
		cs = append(cs, limitCheck{name: policyKey, key: k.ID, limit: l, reason: ReasonRateLimit, desc: descRate})
	}
	if !mw.limits.PerOwner.IsZero() {
		cs = append(cs, limitCheck{name: policyOwner, key: "owner:" + k.Owner, limit: mw.limits.PerOwner,
			reason: ReasonOwnerRateLimit, desc: descRate})
	}
	if !k.Quota.IsZero() {
		cost := int64(1)
		if mw.limits.Cost != nil {
			cost = mw.limits.Cost(r)
		}
		if cost > 0 {
			cs = append(cs, limitCheck{name: policyQuota, key: "quota:" + k.ID, quota: k.Quota, cost: cost,
				reason: ReasonQuota, desc: descQuota})
		}
	}
	return cs
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
// returns false.
//
// The fields' values are fields[0] and fields[1], which live in the
// request's context allocation; both are slices of one string, the
// request's only other allocation here.
func (mw *middleware) limit(q *request, checks []limitCheck, fields *[2]string) bool {
	var polBuf, rateBuf [128]byte
	pol, rate := polBuf[:0], rateBuf[:0]
	var refused *limitCheck
	var wait time.Duration
	for i := range checks {
		c := &checks[i]
		d, err := mw.decide(q.r, c)
		if err != nil {
			if !mw.limits.FailOpen {
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
			pol = appendPolicy(pol, c.name, int64(c.limit.Rate), c.limit.Period)
		} else {
			pol = appendPolicy(pol, c.name, c.quota.Limit, c.quota.Period)
		}
		rate = appendRateItem(rate, c.name, d)
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
		fields[0], fields[1] = s[:len(pol)], s[len(pol):]
		h := q.w.Header()
		h[headerRateLimitPolicy] = fields[0:1:1]
		h[headerRateLimit] = fields[1:2:2]
	}
	if refused != nil {
		mw.reject(q, OutcomeLimited, refused.reason, "", &AuthError{
			Status: http.StatusTooManyRequests, Description: refused.desc, RetryAfter: max(wait, time.Second)})
		return false
	}
	return true
}

// appendPolicy appends a RateLimit-Policy item: quota q per window w, in
// whole seconds, at least 1. For a token bucket that is its sustained rate.
//
//	"key";q=100;w=60
func appendPolicy(b []byte, name string, q int64, w time.Duration) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, q, 10)
	b = append(b, ";w="...)
	return strconv.AppendInt(b, max(ceilSeconds(w), 1), 10)
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
