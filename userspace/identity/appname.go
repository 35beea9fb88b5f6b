package identity

import (
	"fmt"
	"strings"
)

// MaxApplicationNameLen is PostgreSQL's limit on application_name in bytes
// (NAMEDATALEN - 1); the server truncates longer values.
const MaxApplicationNameLen = 63

// ApplicationNamePrefix marks backend sessions opened for a token user.
const ApplicationNamePrefix = "jwt:"

// ApplicationName returns the application_name for a backend session opened
// on behalf of identity: "jwt:<identity>", cut to 63 bytes.
//
// PostgreSQL keeps only printable ASCII in application_name (15 turns every
// other byte into '?', 16 into \xNN), which would make "zoë" and "zoé" the
// same audit name. So every byte outside printable ASCII, and '%' itself, is
// percent-encoded (zo%C3%AB): the value is ASCII, what the server stores is
// exactly what the proxy sets, and it decodes back to the identity. An escape
// is never split by the cut.
func ApplicationName(identity string) string {
	var b strings.Builder
	b.Grow(MaxApplicationNameLen)
	b.WriteString(ApplicationNamePrefix)
	for i := 0; i < len(identity); i++ {
		c := identity[i]
		piece := string(c)
		if c < 0x20 || c >= 0x7f || c == '%' {
			piece = fmt.Sprintf("%%%02X", c)
		}
		if b.Len()+len(piece) > MaxApplicationNameLen {
			break
		}
		b.WriteString(piece)
	}
	return b.String()
}
