package apikey

// Hooks for the external tests of legacy keys (legacy_test.go).

// LegacySlowChecks returns how many slow legacy hashes m has checked, and
// the most it checked at once.
func LegacySlowChecks(m *Manager) (checks, most int64) {
	return m.legacy.slowChecks.Load(), m.legacy.maxInSlow.Load()
}

// LegacyLookups returns what m looks key up under.
func LegacyLookups(m *Manager, key string) []string { return m.legacy.lookups(key) }
