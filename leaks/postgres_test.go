package leaks_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

// openPostgres opens a migrated Store on APIKEY_TEST_POSTGRES, in tables
// of its own, or skips.
func openPostgres(t testing.TB, prefix string) *sqlstore.Store {
	t.Helper()
	dsn := os.Getenv("APIKEY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("APIKEY_TEST_POSTGRES is not set: no PostgreSQL to test against (source .ci/services.sh; start_postgres)")
	}
	ctx := context.Background()
	st, err := sqlopen.Open(ctx, dsn, sqlstore.WithTablePrefix(prefix))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	require.NoError(t, st.Migrate(ctx))
	return st
}

// TestReportReachesOtherInstances: a report handled by one instance
// revokes a key that a second instance, on the same PostgreSQL with a
// 10-minute cache, refuses within a second.
func TestReportReachesOtherInstances(t *testing.T) {
	ctx := context.Background()
	prefix := fmt.Sprintf("leaks%d_", time.Now().UnixNano())
	a := newManager(t, openPostgres(t, prefix))
	b := newManager(t, openPostgres(t, prefix), apikey.WithCache(1000, 10*time.Minute))
	gh := newSigner(t, "key-1")
	ks := newKeyServer(t, gh)
	h := newGitHub(t, a, ks)

	secret, _ := issue(t, a)
	_, err := b.Verify(ctx, secret.Reveal())
	require.NoError(t, err, "the other instance caches the key")
	time.Sleep(300 * time.Millisecond) // both Managers' Watch are listening

	start := time.Now()
	got := decode(t, postGitHub(t, h, gh, body(t, report{Token: secret.Reveal(), Type: "acme_api_key", URL: leakURL})))
	require.Equal(t, "true_positive", got[0].Label)
	answered := time.Since(start)
	deadline := start.Add(time.Second)
	for {
		_, err := b.Verify(ctx, secret.Reveal())
		if errors.Is(err, apikey.ErrRevoked) {
			break
		}
		require.NoError(t, err)
		if time.Now().After(deadline) {
			t.Fatalf("the other instance still accepts the key %v after the report", time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("report answered in %v; the other instance refused the key %v after the report was sent", answered, time.Since(start))
}
