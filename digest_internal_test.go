package apikey

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Digest vectors computed independently with Python's hmac and hashlib
// over "v1|AbCdEf123456|" + 43 × "x", pinning the storage scheme of ARCHITECTURE.md.
func TestDigestKnownAnswers(t *testing.T) {
	secret := "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	var got [digestSize]byte
	newHMACDigester("v1", []byte("pepper-0123456789abcdef")).sum(&got, "AbCdEf123456", secret)
	assert.Equal(t, "46c938cff5c573abeec04bf7caf77c812cad0231ccab90b6c77a1380ebd8f7c4", hex.EncodeToString(got[:]))
	newUnkeyedDigester().sum(&got, "AbCdEf123456", secret)
	assert.Equal(t, "4854f998c00d69c67e0d61652f7c3e1fa86d5cc8fc19bf1bdcba53dfbe36612f", hex.EncodeToString(got[:]))
	assert.Equal(t, "hmac-sha256/v1", newHMACDigester("v1", []byte("pepper-0123456789abcdef")).version)
}

func TestDigesterKeepsItsOwnPepperCopy(t *testing.T) {
	pepper := []byte("pepper-0123456789abcdef")
	d := newHMACDigester("v1", pepper)
	clear(pepper) // a caller wiping its copy must not change digests
	var got [digestSize]byte
	d.sum(&got, "AbCdEf123456", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	assert.Equal(t, "46c938cff5c573abeec04bf7caf77c812cad0231ccab90b6c77a1380ebd8f7c4", hex.EncodeToString(got[:]))
}
