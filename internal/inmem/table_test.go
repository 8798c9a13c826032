package inmem

import (
	"math/rand/v2"
	"testing"
)

// TestTable checks table against a Go map under random inserts, updates,
// removals and sweeps, with hashes crowded into few home slots so that
// probe runs are long and wrap around.
func TestTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		var tb table[int64]
		ref := map[uint64]int64{}
		// Few distinct low bits: long runs. High bits keep hashes distinct.
		spread := uint64(1) << rng.IntN(6)
		randHash := func() uint64 { return hashKey(rng.Uint64N(512)<<32 | rng.Uint64N(spread)) }
		for op := range 3000 {
			switch r := rng.IntN(10); {
			case r < 6: // set
				h, v := randHash(), rng.Int64()
				if i, ok := tb.find(h); ok {
					tb.e[i].v = v
				} else {
					tb.insert(i, h, v)
				}
				ref[h] = v
			case r < 9: // remove
				h := randHash()
				if i, ok := tb.find(h); ok {
					tb.remove(i)
				}
				delete(ref, h)
			default: // sweep about half
				cut := rng.Int64()
				tb.removeIf(func(v int64) bool { return v < cut })
				for h, v := range ref {
					if v < cut {
						delete(ref, h)
					}
				}
			}
			if tb.n != len(ref) {
				t.Fatalf("round %d op %d: %d entries, want %d", round, op, tb.n, len(ref))
			}
			for h, v := range ref {
				if i, ok := tb.find(h); !ok || tb.e[i].v != v {
					t.Fatalf("round %d op %d: hash %#x: found %v, want %d", round, op, h, ok, v)
				}
			}
		}
	}
}
