package masking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaskText masks a text value in Go exactly as the SQL expression of the
// mask does on the server (the second wall uses it); nil (NULL) stays nil.
// The result of Null is nil.
func MaskText(col Column, key []byte, v []byte) []byte {
	if v == nil {
		return nil
	}
	switch col.Mask {
	case Null:
		return nil
	case Partial:
		if utf8.RuneCount(v) <= col.Visible {
			return []byte("***")
		}
		i, n := 0, 0
		for n < col.Visible {
			_, size := utf8.DecodeRune(v[i:])
			i += size
			n++
		}
		return append(append([]byte{}, v[:i]...), "***"...)
	case Email:
		at := strings.IndexByte(string(v), '@')
		if at < 1 {
			return []byte(FullText)
		}
		_, first := utf8.DecodeRune(v)
		last := strings.LastIndexByte(string(v), '@')
		out := append([]byte{}, v[:first]...)
		out = append(out, "***@"...)
		return append(out, v[last+1:]...)
	case Hash:
		sum := sha256.Sum256(v)
		return []byte(hex.EncodeToString(sum[:]))
	case HMAC:
		m := hmac.New(sha256.New, key)
		m.Write(v)
		return []byte(hex.EncodeToString(m.Sum(nil)))
	}
	return []byte(FullText)
}

// Type is what the rewriter needs to know of a column's type.
type Type struct {
	// SQL is the type as format_type writes it (character varying(40)).
	SQL string
	// Text is set for the string category (text, varchar, char, name,
	// citext, domains over them).
	Text bool
}

// checkType reports why a mask cannot produce a column's type, or nil.
func checkType(col Column, t Type) error {
	if t.Text {
		return nil
	}
	switch col.Mask {
	case Full, Null:
		return nil // NULL of the type
	}
	return fmt.Errorf("mask_type %s cannot produce a value of type %s (use full or null, which give NULL for a column that is not text)", col.Mask, t.SQL)
}

// maskSQL is the SQL expression that masks ref (an expression reading the
// clear value, such as "c.email") keeping type t. Everything it calls is
// qualified with pg_catalog, operators included, so that no function or
// operator of the session's search_path can see the clear value.
func maskSQL(col Column, t Type, key []byte, ref string) string {
	if !t.Text || col.Mask == Null {
		return fmt.Sprintf("CAST(NULL AS %s)", t.SQL)
	}
	v := fmt.Sprintf("CAST(%s AS pg_catalog.text)", ref)
	var e string
	switch col.Mask {
	case Partial:
		e = fmt.Sprintf("CASE WHEN pg_catalog.char_length(%s) OPERATOR(pg_catalog.<=) %d THEN '***' ELSE pg_catalog.left(%s, %d) OPERATOR(pg_catalog.||) '***' END",
			v, col.Visible, v, col.Visible)
	case Email:
		e = fmt.Sprintf("CASE WHEN pg_catalog.strpos(%s, '@') OPERATOR(pg_catalog.<=) 1 THEN '%s' ELSE pg_catalog.left(%s, 1) OPERATOR(pg_catalog.||) '***@' OPERATOR(pg_catalog.||) pg_catalog.regexp_replace(%s, '^.*@', '') END",
			v, FullText, v, v)
	case Hash:
		e = fmt.Sprintf("pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(%s, 'UTF8')), 'hex')", v)
	case HMAC:
		ipad, opad := hmacPads(key)
		e = fmt.Sprintf("pg_catalog.encode(pg_catalog.sha256(pg_catalog.decode('%s', 'hex') OPERATOR(pg_catalog.||) pg_catalog.sha256(pg_catalog.decode('%s', 'hex') OPERATOR(pg_catalog.||) pg_catalog.convert_to(%s, 'UTF8'))), 'hex')",
			hex.EncodeToString(opad), hex.EncodeToString(ipad), v)
	default: // Full
		e = "'" + FullText + "'"
	}
	return fmt.Sprintf("CAST(CASE WHEN %s IS NULL THEN NULL ELSE %s END AS %s)", ref, e, t.SQL)
}

// hmacPads returns HMAC-SHA-256's inner and outer padded keys (RFC 2104).
func hmacPads(key []byte) (ipad, opad []byte) {
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	ipad, opad = make([]byte, sha256.BlockSize), make([]byte, sha256.BlockSize)
	copy(ipad, key)
	copy(opad, key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	return ipad, opad
}
