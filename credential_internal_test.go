package apikey

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseBearer(t *testing.T) {
	tests := []struct {
		in     string
		token  string
		status credStatus
	}{
		{"", "", credNone},
		{"Basic dXNlcjpwYXNz", "", credNone},
		{"Digest username=x", "", credNone},
		{"Bearertoken", "", credNone}, // one token: a scheme we do not know
		{"Bearer abc", "abc", credOK},
		{"bearer abc", "abc", credOK},
		{"BeArEr abc", "abc", credOK},
		{"Bearer a-b._~+/c==", "a-b._~+/c==", credOK},
		{"Bearer", "", credMalformed},
		{"Bearer ", "", credMalformed},
		{"Bearer  abc", "", credMalformed},
		{"Bearer\tabc", "", credMalformed},
		{"Bearer abc ", "", credMalformed},
		{"Bearer abc def", "", credMalformed},
		{"Bearer abc,def", "", credMalformed},
		{"Bearer ===", "", credMalformed},
		{"Bearer a=b", "", credMalformed},
		{"Bearer ab\xffc", "", credMalformed},
		{"Bearer ключ", "", credMalformed},
		{"Bearer \"abc\"", "", credMalformed},
		{"Bearer abc\x00", "", credMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			token, status := parseBearer(tt.in)
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.token, token)
		})
	}
}
