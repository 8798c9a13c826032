package vault

// MinMaskLen is the shortest secret Mask shows any of: a shorter one
// would give away too large a share of itself.
const MinMaskLen = 20

// Mask returns the form List shows a secret in: its first 3 characters,
// an ellipsis and its last 4, as in "sk-…abcd", so that a customer can
// tell their keys apart. It returns "" for a secret shorter than
// MinMaskLen bytes or holding anything but printable ASCII, so that at
// least 13 characters are always hidden and nothing is shown of a secret
// of unknown shape.
func Mask(secret string) string {
	if len(secret) < MinMaskLen {
		return ""
	}
	for i := 0; i < len(secret); i++ {
		if secret[i] <= ' ' || secret[i] > '~' {
			return ""
		}
	}
	return secret[:3] + "…" + secret[len(secret)-4:]
}
