package leaks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// maxKeyDocument bounds the key document a handler reads.
const maxKeyDocument = 1 << 20

var (
	// errUnknownKey: the signature names a key identifier that the key
	// document does not hold (yet).
	errUnknownKey = errors.New("leaks: unknown public key identifier")
	// errKeysUnavailable: the key document could not be fetched, so no
	// signature can be checked.
	errKeysUnavailable = errors.New("leaks: key document unavailable")
)

// keyDocument is the JSON document of signing keys GitHub (and GitLab)
// publish.
type keyDocument struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"` // PEM, SubjectPublicKeyInfo
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// keySet fetches the key document and caches its keys. It fetches on first
// use, and again when a signature names an identifier it does not hold,
// at most once per refetch interval; a fetch replaces the whole set, so a
// key the platform withdrew is dropped. Fetches are serialized: concurrent
// requests that need one wait for it.
type keySet struct {
	url     string
	client  *http.Client
	timeout time.Duration
	refetch time.Duration
	now     func() time.Time

	mu          sync.Mutex
	keys        map[string]*ecdsa.PublicKey
	lastAttempt time.Time // zero before the first fetch
	lastErr     error     // of the last attempt
}

// key returns the public key with identifier id.
func (s *keySet) key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[id]; ok {
		return k, nil
	}
	if !s.lastAttempt.IsZero() && s.now().Sub(s.lastAttempt) < s.refetch {
		if s.keys == nil {
			return nil, fmt.Errorf("%w: %w", errKeysUnavailable, s.lastErr)
		}
		return nil, errUnknownKey
	}
	s.lastAttempt = s.now()
	keys, err := s.fetch(ctx)
	s.lastErr = err
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	s.keys = keys
	if k, ok := s.keys[id]; ok {
		return k, nil
	}
	return nil, errUnknownKey
}

// fetch reads and parses the key document.
func (s *keySet) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	// Detached from the request: a client that hangs up must not leave
	// every report refused until the next refetch.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: status %s", s.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyDocument+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", s.url, err)
	}
	if len(body) > maxKeyDocument {
		return nil, fmt.Errorf("fetch %s: key document larger than %d bytes", s.url, maxKeyDocument)
	}
	keys, err := parseKeyDocument(body)
	if err != nil {
		return nil, fmt.Errorf("key document from %s: %w", s.url, err)
	}
	return keys, nil
}

// parseKeyDocument returns the P-256 keys of a key document by
// identifier. A document with no usable key, or with a key that is not
// P-256 ECDSA, is an error: better to refuse every report, and say why,
// than to accept a key of a kind the platform does not sign with.
func parseKeyDocument(body []byte) (map[string]*ecdsa.PublicKey, error) {
	var doc keyDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	keys := make(map[string]*ecdsa.PublicKey, len(doc.PublicKeys))
	for _, k := range doc.PublicKeys {
		if k.KeyIdentifier == "" {
			return nil, errors.New("a key without key_identifier")
		}
		block, _ := pem.Decode([]byte(k.Key))
		if block == nil {
			return nil, fmt.Errorf("key %.80q: not PEM", k.KeyIdentifier)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key %.80q: %w", k.KeyIdentifier, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key %.80q: not a P-256 ECDSA key", k.KeyIdentifier)
		}
		keys[k.KeyIdentifier] = ec
	}
	if len(keys) == 0 {
		return nil, errors.New("no public keys")
	}
	return keys, nil
}
