package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pgproxy/pgproxy/userspace/metadata"
)

// maxEvidenceIndexes bounds the indexes listed per table in Evidence.
const maxEvidenceIndexes = 8

// approx formats a row estimate for people: 2,000,000.
func approx(v float64) string {
	if v >= 1e18 || math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// tableName is schema.name as SQL spells it (name alone when the schema is
// not known): public.orders, sales."Big Orders".
func tableName(t *metadata.Table) string {
	if t.Schema == "" {
		return ruleQuoteIdent(t.Name)
	}
	return ruleQuoteIdent(t.Schema) + "." + ruleQuoteIdent(t.Name)
}

// quoteIdent double-quotes an identifier unless it is lower case letters,
// digits, _ and $ starting with a letter or _ (keywords are not checked:
// the text is for people).
func ruleQuoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case (r >= '0' && r <= '9') || r == '$':
			plain = plain && i > 0
		default:
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// sized is "public.orders (about 2,000,000 rows)".
func sized(t *metadata.Table) string {
	return fmt.Sprintf("%s (about %s rows)", tableName(t), approx(t.Rows))
}

// evidence lists the facts a ruleFinding rests on:
// "public.orders: relkind r, reltuples 2000000, relpages 20000, 156 MiB;
// indexes orders_pkey btree (id), ...; no WHERE, no LIMIT".
func (f ruleFinding) evidence() string {
	var b strings.Builder
	for i, t := range f.tables {
		if i > 0 {
			b.WriteString("; ")
		}
		kind := "?"
		if t.Kind != 0 {
			kind = string(rune(t.Kind))
		}
		fmt.Fprintf(&b, "%s: relkind %s, reltuples %s, relpages %d, %s", tableName(t), kind,
			strconv.FormatFloat(t.Rows, 'f', -1, 64), t.Pages, bytesText(t.Bytes))
		if len(t.Indexes) == 0 {
			b.WriteString("; no indexes")
		}
		for j, ix := range t.Indexes {
			if j == maxEvidenceIndexes {
				fmt.Fprintf(&b, ", and %d more", len(t.Indexes)-j)
				break
			}
			if j == 0 {
				b.WriteString("; indexes ")
			} else {
				b.WriteString(", ")
			}
			cols := make([]string, len(ix.Columns))
			for c, name := range ix.Columns {
				if name == "" {
					name = "<expression>"
				}
				cols[c] = name
			}
			fmt.Fprintf(&b, "%s %s (%s)", ix.Name, ix.Method, strings.Join(cols, ", "))
			if ix.Partial {
				b.WriteString(" partial")
			}
		}
	}
	if f.detail != "" {
		b.WriteString("; ")
		b.WriteString(f.detail)
	}
	return b.String()
}

// bytesText formats a size: 156 MiB.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.0f %ciB", v, "KMGTP"[i])
}
