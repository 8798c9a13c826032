package apikey_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"golang.org/x/crypto/bcrypt"
)

// legacyBenchKeys is the number of distinct keys of each kind the legacy
// benchmarks spread over.
const legacyBenchKeys = 10_000

// BenchmarkLegacyVerifyCached measures Manager.Verify on a cache hit:
// native keys and imported SHA-256 keys of one Manager, over
// legacyBenchKeys distinct keys each, in one run. Report legacy/native
// as a ratio.
func BenchmarkLegacyVerifyCached(b *testing.B) {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(4*legacyBenchKeys, time.Hour), apikey.WithLegacy(apikey.LegacyConfig{}))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	native := make([]string, legacyBenchKeys)
	legacy := make([]string, legacyBenchKeys)
	batch := make([]apikey.LegacyImport, legacyBenchKeys)
	for i := range legacyBenchKeys {
		s, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		native[i] = s.Reveal()
		r := make([]byte, 24)
		rand.Read(r)
		legacy[i] = "old_" + base64.RawURLEncoding.EncodeToString(r)
		sum := sha256.Sum256([]byte(legacy[i]))
		batch[i] = apikey.LegacyImport{IssueRequest: apikey.IssueRequest{Owner: "bench"}, Hash: "sha256:" + hex.EncodeToString(sum[:])}
	}
	if _, err := m.ImportLegacy(ctx, batch); err != nil {
		b.Fatal(err)
	}
	for name, keys := range map[string][]string{"native": native, "legacy-sha256": legacy} {
		for _, k := range keys {
			if _, err := m.Verify(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name, func(b *testing.B) {
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(7919)
				for pb.Next() {
					i++
					if _, err := m.Verify(ctx, keys[i%legacyBenchKeys]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkLegacyFirstUseBcrypt measures the first use of an imported
// bcrypt key of cost 10 (its cache entry absent: the cache is off), and
// bcrypt.CompareHashAndPassword on the same hash in the same run: the
// ratio is what the lookup and the rest cost on top of the hash.
func BenchmarkLegacyFirstUseBcrypt(b *testing.B) {
	ctx := context.Background()
	rule := must(apikey.LegacyIDAfter("old_", 8))
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(0, 0), apikey.WithLegacy(apikey.LegacyConfig{ID: rule, MaxConcurrentHashes: 64}))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	key := "old_0123abcd." + fmt.Sprint(time.Now().UnixNano())
	hash, err := bcrypt.GenerateFromPassword([]byte(key), 10)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.ImportLegacy(ctx, []apikey.LegacyImport{{IssueRequest: apikey.IssueRequest{Owner: "bench"}, Hash: string(hash), ID: "0123abcd"}}); err != nil {
		b.Fatal(err)
	}
	b.Run("bcrypt.CompareHashAndPassword", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := bcrypt.CompareHashAndPassword(hash, []byte(key)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Verify(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}
