package apikey

// limitKeys are the keys that a key's requests are counted under on the
// Limiter, the Counter and the Ledger, besides its rate limit's, which is
// its lineage (Key.LineageID). Made once per cache entry, on its key's
// first request that needs one of them (cacheEntry.limitKeys), they cost a
// request no allocation.
type limitKeys struct {
	owner        string // Limits.PerOwner's
	quota        string // the key's Quota's: quotaKey
	ownerQuota   string // Limits.PerOwnerQuota's: ownerQuotaKey
	credits      string // the key's Credits': CreditsKey
	ownerCredits string // Limits.PerOwnerCredits': OwnerCreditsKey
}

func newLimitKeys(k *Key) *limitKeys {
	return &limitKeys{
		owner:        "owner:" + k.Owner,
		quota:        quotaKey(k),
		ownerQuota:   ownerQuotaKey(k),
		credits:      CreditsKey(k),
		ownerCredits: OwnerCreditsKey(k.Owner),
	}
}

// limitKeysOf returns the limit keys of k, whose cache entry is e: e's, or
// for a key without an entry (e nil), new ones.
func limitKeysOf(e *cacheEntry, k *Key) *limitKeys {
	if e == nil {
		return newLimitKeys(k)
	}
	if lk := e.keys.Load(); lk != nil {
		return lk
	}
	lk := newLimitKeys(k)
	e.keys.Store(lk) // a request racing this one may store its own: equal
	return lk
}

// quotaKey is the Counter's key of k's quota: one per lineage, so that a
// rotated key goes on with its predecessor's usage.
func quotaKey(k *Key) string { return "quota:" + k.LineageID() }

// ownerQuotaKey is the Counter's key of Limits.PerOwnerQuota for k's
// owner. It cannot collide with a quotaKey: its prefix differs.
func ownerQuotaKey(k *Key) string { return "owner-quota:" + k.Owner }
