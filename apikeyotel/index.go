package apikeyotel

import "github.com/apikeykit/apikey"

// outcomeIndex returns the index of o in outcomes, or -1. A switch on a
// string costs a few comparisons, where a map lookup would hash it.
func outcomeIndex(o apikey.Outcome) int {
	switch o {
	case apikey.OutcomeAuthenticated:
		return 0
	case apikey.OutcomeAnonymous:
		return 1
	case apikey.OutcomeNoCredential:
		return 2
	case apikey.OutcomeBadRequest:
		return 3
	case apikey.OutcomeInvalidKey:
		return 4
	case apikey.OutcomeForbidden:
		return 5
	case apikey.OutcomeLimited:
		return 6
	case apikey.OutcomeUnavailable:
		return 7
	}
	return -1
}

// reasonIndex returns the index of r in reasons, or -1.
func reasonIndex(r apikey.Reason) int {
	switch r {
	case "":
		return 0
	case apikey.ReasonNoCredential:
		return 1
	case apikey.ReasonTwoCredentials:
		return 2
	case apikey.ReasonMalformedAuthorization:
		return 3
	case apikey.ReasonTooLong:
		return 4
	case apikey.ReasonMalformed:
		return 5
	case apikey.ReasonChecksum:
		return 6
	case apikey.ReasonWrongPrefix:
		return 7
	case apikey.ReasonInvalid:
		return 8
	case apikey.ReasonRevoked:
		return 9
	case apikey.ReasonExpired:
		return 10
	case apikey.ReasonSuspended:
		return 11
	case apikey.ReasonNotYetValid:
		return 12
	case apikey.ReasonIPNotAllowed:
		return 13
	case apikey.ReasonInsufficientScope:
		return 14
	case apikey.ReasonRateLimit:
		return 15
	case apikey.ReasonOwnerRateLimit:
		return 16
	case apikey.ReasonQuota:
		return 17
	case apikey.ReasonOwnerQuota:
		return 18
	case apikey.ReasonFailedAuthLimit:
		return 19
	case apikey.ReasonStore:
		return 20
	case apikey.ReasonLimiter:
		return 21
	case apikey.ReasonCanceled:
		return 22
	case apikey.ReasonLegacyBusy:
		return 23
	case apikey.ReasonPreflight:
		return 24
	case apikey.ReasonCredits:
		return 25
	case apikey.ReasonOwnerCredits:
		return 26
	}
	return -1
}

// thresholdPolicies are the values of apikey.limit.policy on
// apikey.quota.thresholds: the Event.Policy of a crossing, or "other" for
// a policy this package does not know, so that the attribute stays
// bounded.
var thresholdPolicies = [...]string{"quota", "owner-quota", "credits", "owner-credits", "other"}

func thresholdPolicy(p string) int {
	switch p {
	case "quota":
		return 0
	case "owner-quota":
		return 1
	case "credits":
		return 2
	case "owner-credits":
		return 3
	}
	return len(thresholdPolicies) - 1
}
