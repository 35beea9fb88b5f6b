package identity

import (
	"strings"
	"unicode/utf8"
)

// MaxApplicationNameLen is PostgreSQL's limit on application_name in bytes
// (NAMEDATALEN - 1); the server truncates longer values.
const MaxApplicationNameLen = 63

// ApplicationNamePrefix marks backend sessions opened for a token user.
const ApplicationNamePrefix = "jwt:"

// ApplicationName returns the application_name for a backend session opened
// on behalf of identity: "jwt:<identity>", cut to 63 bytes without splitting
// a UTF-8 character. Control characters (which could break the startup
// packet or log lines) become '?'. Invalid UTF-8 bytes become '?' as well.
func ApplicationName(identity string) string {
	var b strings.Builder
	b.Grow(MaxApplicationNameLen)
	b.WriteString(ApplicationNamePrefix)
	for _, r := range identity {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || (r >= 0x80 && r < 0xa0) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > MaxApplicationNameLen {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
