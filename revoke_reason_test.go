package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

// revokerOnly is a Store with apikey.Revoker but not apikey.ReasonRevoker,
// whose records can be made not to decode, as a row a Store cannot read.
type revokerOnly struct {
	*memstore.Store
	corrupt bool
	revoked []string // IDs revoked through Revoke
}

func (s *revokerOnly) Get(ctx context.Context, id string) (*apikey.Key, error) {
	if s.corrupt {
		return nil, fmt.Errorf("%w: key %s", apikey.ErrCorruptRecord, id)
	}
	return s.Store.Get(ctx, id)
}

func (s *revokerOnly) Revoke(ctx context.Context, id string, at time.Time) error {
	s.revoked = append(s.revoked, id)
	k, err := s.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	if !k.RevokedAt.IsZero() {
		return nil
	}
	k.RevokedAt = at
	return s.Store.Update(ctx, k)
}

// TestRevokeWithReasonOnARevoker: over a Store that has only Revoker, a
// reason is recorded through a read and an update; Revoke without one
// takes the Revoker path; and a record that no longer decodes is still
// revoked, through Revoker, without its reason, rather than not at all.
func TestRevokeWithReasonOnARevoker(t *testing.T) {
	ctx := context.Background()
	s := &revokerOnly{Store: memstore.New()}
	m, err := apikey.NewManager(s, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()

	_, a, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	require.NoError(t, m.RevokeWithReason(ctx, a.ID, "leaked: https://example.com/a"))
	assert.Empty(t, s.revoked, "a reason needs the update path")
	got, err := s.Store.Get(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, "leaked: https://example.com/a", got.RevokedReason)

	_, b, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	require.NoError(t, m.Revoke(ctx, b.ID))
	assert.Equal(t, []string{b.ID}, s.revoked)

	secret, c, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	s.corrupt = true
	require.NoError(t, m.RevokeWithReason(ctx, c.ID, "leaked: https://example.com/c"))
	assert.Equal(t, []string{b.ID, c.ID}, s.revoked, "a corrupt record is revoked through Revoker")
	s.corrupt = false
	got, err = s.Store.Get(ctx, c.ID)
	require.NoError(t, err)
	assert.False(t, got.RevokedAt.IsZero())
	assert.Empty(t, got.RevokedReason)
	_, err = m.Verify(ctx, secret.Reveal())
	assert.True(t, errors.Is(err, apikey.ErrRevoked), "Verify = %v", err)
}
