package apikey

import (
	"errors"
	"slices"
)

// legacyKey is the middleware's answer to a credential that did not
// parse (parseErr): the key it verifies as, with WithLegacy, or nil once
// it has refused the request. A key with a replacement (LegacyUpgrade)
// names it in the LegacyReplacedByHeader header; WithAllowedPrefixes
// applies to the prefix of its record.
func (mw *middleware) legacyKey(q *request, raw string, parseErr error) *Key {
	k, err := mw.m.verifyLegacy(q.r.Context(), raw, parseErr)
	switch {
	case errors.Is(err, ErrLegacyBusy):
		mw.unavailable(q, ReasonLegacyBusy, err)
		return nil
	case err != nil:
		mw.verifyFailed(q, err)
		return nil
	case len(mw.prefixes) > 0 && !slices.Contains(mw.prefixes, k.Prefix):
		mw.invalidKey(q, ReasonWrongPrefix, nil)
		return nil
	}
	if k.ReplacedBy != "" {
		q.w.Header().Set(LegacyReplacedByHeader, k.ReplacedBy)
	}
	return k
}
