package portal_test

import (
	"net/http"
	"testing"
)

// FuzzRequests sends arbitrary bodies to every endpoint that reads one:
// the portal never panics and never fails with 5xx; a refusal is a
// problem document and writes nothing; only a 201 or 200 may write.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		`{"name":"a"}`, `{"name":"a","scopes":["orders:read"],"expires_in":"1d","allowed_ips":["10.0.0.0/8"]}`,
		`{"name":"a","expires_at":"2030-07-01T00:00:00Z"}`, `{"grace":"1h"}`, `{"scopes":["*"]}`, `{"allowed_ips":["x"]}`,
		`{`, `[]`, `null`, `""`, `{"name":"a"}{}`, `{"name":"\u0000"}`, `{"name":1e400}`,
	} {
		for op := range uint8(4) {
			f.Add(op, s)
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body string) {
		e := newEnv(t)
		id := e.create("alice", `{"name":"seed","scopes":["orders:read"]}`).Key.ID
		var method, path string
		switch op % 4 {
		case 0:
			method, path = "POST", "/api/keys"
		case 1:
			method, path = "PATCH", "/api/keys/"+id
		case 2:
			method, path = "POST", "/api/keys/"+id+"/rotate"
		case 3:
			method, path = "POST", "/api/keys/"+id+"/revoke"
		}
		before := e.snapshot()
		w := e.do(method, path, "alice", body)
		switch {
		case w.Code >= 500:
			t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body.String())
		case w.Code == http.StatusOK || w.Code == http.StatusCreated:
			return
		}
		problem(t, w)
		if after := e.snapshot(); after != before {
			t.Fatalf("%s %s %q → %d changed the store", method, path, body, w.Code)
		}
	})
}
