package leaks_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/leaks"
)

// BenchmarkLargestBatch answers a report of DefaultMaxBatch tokens, half
// of them live keys (revoked by the first run, so later runs take the
// already-revoked path, as a redelivery does) and half garbage, on
// memstore and, when APIKEY_TEST_POSTGRES is set, PostgreSQL.
func BenchmarkLargestBatch(b *testing.B) {
	for _, backend := range []string{"memstore", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var m *apikey.Manager
			if backend == "memstore" {
				m, _ = newMemManager(b)
			} else {
				m = newManager(b, openPostgres(b, fmt.Sprintf("leaksbench%d_", time.Now().UnixNano())))
			}
			gh := newSigner(b, "key-1")
			ks := newKeyServer(b, gh)
			h, err := leaks.GitHub(m, leaks.WithKeysURL(ks.URL), leaks.WithErrors(func(error) {}))
			if err != nil {
				b.Fatal(err)
			}
			var reports []report
			for i := range leaks.DefaultMaxBatch {
				tok := fmt.Sprintf("garbage-%d", i)
				if i%2 == 0 {
					secret, _ := issue(b, m)
					tok = secret.Reveal()
				}
				reports = append(reports, report{Token: tok, Type: "acme_api_key", URL: leakURL})
			}
			payload := body(b, reports...)
			sig := gh.sign(b, payload)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := post(h, "Github-Public-Key-Identifier", "Github-Public-Key-Signature", gh.id, sig, payload)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
