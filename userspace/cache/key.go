package cache

import "strings"

// KeyPrefix starts every Valkey key of a decision.
const KeyPrefix = "pgproxy:decision:"

// InvalidationChannel is the Valkey pub/sub channel on which the key of a deleted decision is
// published (a message "pgproxy:decision:<database>:*" stands for one database, "*" for all).
const InvalidationChannel = "pgproxy:decision:invalidate"

// purgeAllMessage is the invalidation message that empties every replica's memory tier.
const purgeAllMessage = "*"

// Key returns the Valkey key of the decision for fingerprint in database:
// "pgproxy:decision:" + escape(database) + ":" + escape(fingerprint). The escape keeps A-Z,
// a-z, 0-9, '.', '_' and '-' and writes every other byte as %XX (upper-case hex), so the
// key is unique for each (database, fingerprint) pair, and contains no ':' but the two
// separators and no glob, hash-tag, space or control character.
func Key(database, fingerprint string) string {
	var b strings.Builder
	b.Grow(len(KeyPrefix) + len(database) + 1 + len(fingerprint))
	b.WriteString(KeyPrefix)
	escapeTo(&b, database)
	b.WriteByte(':')
	escapeTo(&b, fingerprint)
	return b.String()
}

// databasePattern is the SCAN pattern and invalidation message for every key of database.
func databasePattern(database string) string {
	var b strings.Builder
	b.WriteString(KeyPrefix)
	escapeTo(&b, database)
	b.WriteString(":*")
	return b.String()
}

// ParseKey is the inverse of Key: it returns the database and fingerprint of a decision key,
// and false for any string Key cannot have made.
func ParseKey(key string) (database, fingerprint string, ok bool) {
	rest, found := strings.CutPrefix(key, KeyPrefix)
	if !found {
		return "", "", false
	}
	db, fp, found := strings.Cut(rest, ":")
	if !found {
		return "", "", false
	}
	if database, ok = unescape(db); !ok {
		return "", "", false
	}
	if fingerprint, ok = unescape(fp); !ok {
		return "", "", false
	}
	return database, fingerprint, true
}

// parsePattern returns the database of a message made by databasePattern.
func parsePattern(msg string) (database string, ok bool) {
	rest, found := strings.CutPrefix(msg, KeyPrefix)
	if !found {
		return "", false
	}
	db, found := strings.CutSuffix(rest, ":*")
	if !found || strings.Contains(db, ":") {
		return "", false
	}
	return unescape(db)
}

const upperHex = "0123456789ABCDEF"

func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

func escapeTo(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

// unescape reverses escapeTo and refuses anything escapeTo cannot have written (so that the
// mapping stays one-to-one: "%41" is not another spelling of "A").
func unescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		if c != '%' || i+2 >= len(s) {
			return "", false
		}
		hi, lo := strings.IndexByte(upperHex, s[i+1]), strings.IndexByte(upperHex, s[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		v := byte(hi<<4 | lo)
		if plain(v) {
			return "", false
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), true
}
