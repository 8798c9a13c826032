module github.com/apikeykit/apikey/webhookcheck

go 1.26.0

replace github.com/apikeykit/apikey => ../

require (
	github.com/apikeykit/apikey v0.0.0-00010101000000-000000000000
	github.com/standard-webhooks/standard-webhooks/libraries v0.0.1
)

require (
	golang.org/x/crypto v0.53.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
