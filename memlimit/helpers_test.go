package memlimit_test

import "github.com/apikeykit/apikey/internal/testclock"

// must returns v, panicking on err: for tests and benchmarks whose
// options are known to be valid.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newFakeClock() *testclock.Clock { return testclock.New(t0) }
