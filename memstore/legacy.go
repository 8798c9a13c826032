package memstore

import (
	"context"

	"github.com/apikeykit/apikey"
)

// CreateLegacy implements apikey.LegacyStore: every key and record is
// written under one lock, or none is.
func (s *Store) CreateLegacy(ctx context.Context, keys []*apikey.Key, records []apikey.LegacyRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	ids := make(map[string]bool, len(keys))
	for _, k := range keys {
		if _, ok := s.keys[k.ID]; ok || ids[k.ID] {
			s.mu.Unlock()
			return apikey.ErrConflict
		}
		ids[k.ID] = true
	}
	lookups := make(map[string]bool, len(records))
	for _, r := range records {
		if _, ok := s.legacy[r.Lookup]; ok || lookups[r.Lookup] {
			s.mu.Unlock()
			return apikey.ErrConflict
		}
		lookups[r.Lookup] = true
	}
	for _, k := range keys {
		s.insertLocked(k)
	}
	for _, r := range records {
		s.legacy[r.Lookup] = r
	}
	s.mu.Unlock()
	for _, k := range keys {
		s.notify(k.ID)
	}
	return nil
}

// GetLegacy implements apikey.LegacyStore.
func (s *Store) GetLegacy(ctx context.Context, lookups []string) ([]apikey.LegacyRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []apikey.LegacyRecord
	for _, l := range lookups {
		if r, ok := s.legacy[l]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}
