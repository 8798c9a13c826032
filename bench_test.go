package apikey_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

// benchKeys is the number of distinct keys benchmarks spread over, so
// that caches and maps behave as they do in production, not as they do
// with one hot key.
const benchKeys = 100_000

type benchFixture struct {
	m      *apikey.Manager // usage metering off, as before it existed
	store  *memstore.Store
	tokens []string
	// The floor's data: the same keys' digests by ID, and token bytes.
	digests map[string][]byte
	raw     [][]byte
}

var (
	fixtureOnce sync.Once
	fixture     benchFixture
)

// loadFixture issues benchKeys keys once per test binary and verifies
// each, so every benchmark starts on a warm cache, and returns them in a
// shuffled order.
func loadFixture(b *testing.B) *benchFixture {
	b.Helper()
	fixtureOnce.Do(func() {
		ctx := context.Background()
		store := memstore.New()
		m, err := apikey.NewManager(store, apikey.WithPrefix("acme_live"),
			apikey.WithPepper("v1", testPepper), apikey.WithCache(benchKeys, time.Hour), apikey.WithoutUsage())
		if err != nil {
			panic(err)
		}
		f := benchFixture{m: m, store: store, digests: make(map[string][]byte, benchKeys)}
		mac := hmac.New(sha256.New, testPepper)
		for i := 0; i < benchKeys; i++ {
			secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: fmt.Sprint("owner-", i%1000), Scopes: []string{"orders:read"}})
			if err != nil {
				panic(err)
			}
			tok := secret.Reveal()
			f.tokens = append(f.tokens, tok)
			f.raw = append(f.raw, []byte(tok))
			mac.Reset()
			mac.Write([]byte(tok))
			f.digests[k.ID] = mac.Sum(nil)
			if _, err := m.Verify(ctx, tok); err != nil {
				panic(err)
			}
		}
		// Benchmarks visit the keys in an order unrelated to the one in
		// which their records and cache entries were allocated, as a
		// server's callers would: in issue order, neighbouring keys'
		// memory would be read one after the other and hide the cost of
		// cache misses.
		rand.New(rand.NewPCG(1, 2)).Shuffle(benchKeys, func(i, j int) {
			f.tokens[i], f.tokens[j] = f.tokens[j], f.tokens[i]
			f.raw[i], f.raw[j] = f.raw[j], f.raw[i]
		})
		fixture = f
	})
	return &fixture
}

// BenchmarkVerify measures Manager.Verify on a cache hit over 100k
// distinct keys. Compare it with BenchmarkVerifyFloor from the same run.
func BenchmarkVerify(b *testing.B) {
	f := loadFixture(b)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := f.m.Verify(ctx, f.tokens[i%benchKeys]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(benchKeys)
			for pb.Next() {
				if _, err := f.m.Verify(ctx, f.tokens[i%benchKeys]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkVerifyFloor is the least any verification can cost: one
// HMAC-SHA256 of the key (with a reused, precomputed HMAC state), a map
// lookup of its ID and a constant-time compare, with no parsing, no
// checksum, no expiry or revocation checks and no cache bookkeeping.
func BenchmarkVerifyFloor(b *testing.B) {
	f := loadFixture(b)
	floor := func(mac hashWriter, sum []byte, i int) bool {
		raw := f.raw[i%benchKeys]
		mac.Reset()
		mac.Write(raw)
		sum = mac.Sum(sum[:0])
		want, ok := f.digests[string(raw[10:22])] // the kid; no allocation
		return ok && hmac.Equal(sum, want)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		mac := hmac.New(sha256.New, testPepper)
		sum := make([]byte, 0, sha256.Size)
		i := 0
		for b.Loop() {
			if !floor(mac, sum, i) {
				b.Fatal("floor did not match")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			mac := hmac.New(sha256.New, testPepper)
			sum := make([]byte, 0, sha256.Size)
			i := rand.IntN(benchKeys)
			for pb.Next() {
				if !floor(mac, sum, i) {
					b.Error("floor did not match")
					return
				}
				i++
			}
		})
	})
}

type hashWriter interface {
	Reset()
	Write([]byte) (int, error)
	Sum([]byte) []byte
}

func BenchmarkParse(b *testing.B) {
	f := loadFixture(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := apikey.Parse(f.tokens[i%benchKeys]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := apikey.Generate("acme_live"); err != nil {
			b.Fatal(err)
		}
	}
}
