package vault_test

import (
	"testing"

	"github.com/apikeykit/apikey/vault"
	"github.com/apikeykit/apikey/vault/vaulttest"
)

func TestMemStoreConformance(t *testing.T) {
	vaulttest.Run(t, func() vault.Store { return vault.NewMemStore() })
}
