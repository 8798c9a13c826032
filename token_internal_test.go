package apikey

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseID checks that Parse reads back Generate's kid, for prefixes
// short, long and with underscores.
func TestParseID(t *testing.T) {
	for _, prefix := range []string{"a", "acme_live", "x_y_z", "p0123456789abcdefghijklmnopqrstu"} {
		for i := 0; i < 100; i++ {
			tok, err := Generate(prefix)
			require.NoError(t, err)
			parsed, err := Parse(tok.Secret().Reveal())
			require.NoError(t, err)
			require.Equal(t, tok.ID, parsed.ID, prefix)
			require.Equal(t, tok.Prefix, parsed.Prefix, prefix)
		}
	}
}
