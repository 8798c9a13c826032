package apikey

import (
	"fmt"
	"slices"
	"sync"
)

// DigestVersions returns the digest versions this Manager verifies (see
// Key.DigestVersion), the one it gives new keys first. An operator can
// compare a key's DigestVersion with them to tell why it does not verify.
func (m *Manager) DigestVersions() []string {
	vs := []string{m.digests.current.version}
	for v := range m.digests.byName {
		if v != m.digests.current.version {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs[1:])
	return vs
}

// reportBroken tells the operator, through the background error function,
// of a record that can never verify for a reason only they can fix: a
// pepper version that is not configured (once per version) or limits that
// make no sense (once per key). The caller is only ever told that the key
// is invalid, or unavailable once it proved it holds the key.
func (m *Manager) reportBroken(k *Key, reason error) {
	topic := "key " + k.ID
	if m.digests.lookup(k.DigestVersion) == nil {
		topic = "digest version " + k.DigestVersion
	}
	if m.reported.add(topic) {
		m.onError(fmt.Errorf("apikey: key %s can never verify: %w", k.ID, reason))
	}
}

// maxReported bounds how many broken records a Manager remembers having
// reported; past it, they are reported again.
const maxReported = 1024

// reportedSet remembers what was reported. It is safe for concurrent use.
type reportedSet struct {
	mu   sync.Mutex
	seen map[string]bool
}

// add reports whether topic is new, and remembers it.
func (s *reportedSet) add(topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[topic] {
		return false
	}
	if s.seen == nil || len(s.seen) >= maxReported {
		s.seen = make(map[string]bool)
	}
	s.seen[topic] = true
	return true
}
