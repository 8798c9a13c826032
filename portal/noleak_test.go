package portal_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// findKeys returns the kids of the keys apikey.Scan finds in a response,
// headers and body.
func findKeys(t *testing.T, w *httptest.ResponseRecorder) []string {
	t.Helper()
	var buf bytes.Buffer
	for name, values := range w.Header() {
		fmt.Fprintf(&buf, "%s: %s\n", name, strings.Join(values, ", "))
	}
	buf.Write(w.Body.Bytes())
	var kids []string
	require.NoError(t, apikey.Scan(&buf, func(f apikey.Finding) error {
		kids = append(kids, f.ID)
		return nil
	}))
	return kids
}

// TestNoKeyInResponses is a property test: over random sequences of
// requests by two owners, good and bad, no response other than a
// successful create or rotate holds a key, as apikey.Scan finds keys
// (plain, and base64, hex or percent encoded); and each successful create
// or rotate holds exactly one, the new key.
func TestNoKeyInResponses(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 13))
			e := newEnv(t)
			owners := []string{"alice", "bob"}
			var ids []string
			pick := func() string {
				if len(ids) == 0 || rng.IntN(10) == 0 {
					return "AAAAAAAAAAAA"
				}
				return ids[rng.IntN(len(ids))]
			}
			bodies := []string{"", "{}", `{"grace":"1h"}`, `{"grace":"0"}`, `{"name":"renamed"}`,
				`{"scopes":["orders:read"]}`, `{"scopes":["billing:write"]}`, `{"allowed_ips":["10.0.0.0/8"]}`,
				`{"allowed_ips":["nope"]}`, `{"x":1}`, `not json`}
			for range 60 {
				owner := owners[rng.IntN(2)]
				var method, path, body string
				switch rng.IntN(8) {
				case 0, 1:
					method, path = "POST", "/api/keys"
					body = []string{`{"name":"k","scopes":["orders:read"]}`, `{"name":""}`, `{"name":"k","expires_in":"1d"}`}[rng.IntN(3)]
				case 2:
					method, path = "GET", "/api/keys?limit="+fmt.Sprint(1+rng.IntN(5))
				case 3:
					method, path = "GET", "/api/keys/"+pick()
				case 4:
					method, path, body = "PATCH", "/api/keys/"+pick(), bodies[rng.IntN(len(bodies))]
				case 5:
					method, path, body = "POST", "/api/keys/"+pick()+"/rotate", bodies[rng.IntN(4)]
				case 6:
					method, path = "POST", "/api/keys/"+pick()+"/revoke"
				case 7:
					method, path = "GET", "/"
				}
				w := e.do(method, path, owner, body)
				found := findKeys(t, w)
				issuing := w.Code == 201
				if !issuing {
					assert.Empty(t, found, "%s %s %s → %d holds a key: %s", method, path, body, w.Code, w.Body.String())
					continue
				}
				var kb keyBody
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &kb))
				assert.Equal(t, []string{kb.Key.ID}, found, "%s %s: the new key, once", method, path)
				ids = append(ids, kb.Key.ID)
				e.clock.Advance(time.Duration(rng.IntN(3600)) * time.Second)
			}
		})
	}
}
