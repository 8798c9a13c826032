package apikey

// Hooks for the external benchmarks of usage metering
// (BenchmarkMeteringOnOff).

// MeteringSwitch returns functions that turn m's usage metering off and
// back on, so that a benchmark can send one Manager's requests, on the
// same cache entries, with and without it in turn. They must not be
// called while m serves a request, and metering must be on again before
// m.Close.
func MeteringSwitch(m *Manager) (off, on func()) {
	meter := m.usage
	return func() { m.usage = nil }, func() { m.usage = meter }
}
