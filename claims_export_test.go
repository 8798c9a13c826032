package apikey

// Hooks for the external tests of the sweeps' claims (hygiene_test.go).

// MemoryClaims returns how many event claims m holds in memory, for a
// Store that cannot hold them.
func MemoryClaims(m *Manager) int {
	m.sweeper.mu.Lock()
	defer m.sweeper.mu.Unlock()
	return len(m.sweeper.claimed)
}
