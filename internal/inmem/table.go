package inmem

// table is the per-shard store of Limiter and Counter: an
// open-addressing hash table with linear probing, keyed by the 64-bit
// hash of a key (already uniformly random, so its low bits pick the
// slot). It exists because a Go map costs an extra hash and a few
// pointer hops (directory, table, group) per access, which with millions
// of keys are cache misses; here a lookup and the update that follows
// touch one slot, usually one cache line. It is not safe for concurrent
// use: the shard's mutex guards it.
type table[V any] struct {
	e []entry[V] // len is a power of two; h == 0 marks an empty slot
	n int        // occupied slots
}

type entry[V any] struct {
	h uint64
	v V
}

const minTableSize = 16

// hashKey maps a key's hash to a table key: 0 marks empty slots, so it
// becomes 1 (one more collision among 2^64 values).
func hashKey(h uint64) uint64 { return max(h, 1) }

// find returns the index of h's slot and true, or the index of the empty
// slot where h would go and false.
func (t *table[V]) find(h uint64) (int, bool) {
	if t.e == nil {
		t.e = make([]entry[V], minTableSize)
	}
	mask := len(t.e) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		switch t.e[i].h {
		case h:
			return i, true
		case 0:
			return i, false
		}
	}
}

// insert puts (h, v) in the empty slot i that find returned for h, and
// grows the table when it is three quarters full.
func (t *table[V]) insert(i int, h uint64, v V) {
	t.e[i] = entry[V]{h, v}
	t.n++
	if t.n*4 > len(t.e)*3 {
		t.resize(len(t.e) * 2)
	}
}

// remove empties slot i, shifting back the entries of its probe run that
// would otherwise become unreachable (no tombstones, so tables that see
// many deletions do not fill up with them).
func (t *table[V]) remove(i int) {
	mask := len(t.e) - 1
	for j := (i + 1) & mask; t.e[j].h != 0; j = (j + 1) & mask {
		home := int(t.e[j].h) & mask
		// The entry at j may move to i unless its home slot lies in the
		// cyclic range (i, j]: then i comes before its home.
		if (j-home)&mask >= (j-i)&mask {
			t.e[i] = t.e[j]
			i = j
		}
	}
	t.e[i] = entry[V]{}
	t.n--
}

// removeIf removes the entries for which drop returns true.
func (t *table[V]) removeIf(drop func(V) bool) {
	for i := 0; i < len(t.e); {
		if t.e[i].h != 0 && drop(t.e[i].v) {
			// remove may move a later entry (or, wrapping around, one
			// already seen) into slot i: look at i again.
			t.remove(i)
			continue
		}
		i++
	}
	// Give memory back after a spike: shrink to twice what is needed.
	if len(t.e) > minTableSize && t.n*8 < len(t.e) {
		size := minTableSize
		for size < t.n*2 {
			size *= 2
		}
		t.resize(size)
	}
}

func (t *table[V]) resize(size int) {
	old := t.e
	t.e = make([]entry[V], size)
	mask := size - 1
	for _, e := range old {
		if e.h == 0 {
			continue
		}
		i := int(e.h) & mask
		for t.e[i].h != 0 {
			i = (i + 1) & mask
		}
		t.e[i] = e
	}
}
