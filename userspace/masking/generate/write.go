package generate

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/pgproxy/pgproxy/userspace/masking"
)

// Render writes the masking file for a scan: the masking package's YAML
// (version "1.0", default_schema, unknown_table_behavior passthrough,
// tables), tables in schema and name order and columns in attribute
// order, one comment per column with its confidence and evidence, low
// candidates commented out, and the tables left out listed in comments at
// the end. The text is checked with masking.Parse before it is returned.
// It holds names and counts only, never a sampled value.
func Render(res *Result) ([]byte, error) {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	schemas := "schemas " + strings.Join(safeAll(res.Schemas), ", ")
	if len(res.Schemas) == 1 {
		schemas = "schema " + safe(res.Schemas[0])
	}
	w("# Masking configuration written by pgproxy generate-config for database %s, %s.\n", safe(res.Database), schemas)
	w("# Review it before MASKING_ENABLED=true: every entry is a guess from the column's name and a\n")
	w("# sample of at most %d rows of its table. Each column's comment gives the confidence and the\n", res.SampleRows)
	w("# evidence: the detectors, the share of the sampled values they matched, and what the name\n")
	w("# says. No sampled value is written here. Low-confidence candidates are left commented out.\n")
	if res.HMAC {
		w("# hmac masks need the same MASKING_HMAC_KEY (or MASKING_HMAC_KEY_FILE) when the proxy runs.\n")
	} else {
		w("# Identifiers get full masks: with MASKING_HMAC_KEY set, generate-config gives them hmac\n")
		w("# (a keyed hash that keeps joins and counts working).\n")
	}
	def := "public"
	if len(res.Schemas) == 1 {
		def = res.Schemas[0]
	}
	w("version: \"1.0\"\n")
	w("default_schema: %s\n", yamlString(def))
	w("unknown_table_behavior: %s\n", masking.Passthrough)
	var unmasked, skipped []*Table
	masked := 0
	for i := range res.Tables {
		t := &res.Tables[i]
		switch {
		case t.Skipped != "":
			skipped = append(skipped, t)
		case len(t.Masked()) == 0:
			unmasked = append(unmasked, t)
		default:
			masked++
		}
	}
	if masked == 0 {
		w("tables: []\n")
	} else {
		w("tables:\n")
	}
	for i := range res.Tables {
		t := &res.Tables[i]
		if t.Skipped != "" || len(t.Masked()) == 0 {
			continue
		}
		w("  # %s\n", tableLine(t))
		w("  - schema: %s\n", yamlString(t.Schema))
		w("    table: %s\n", yamlString(t.Name))
		w("    columns:\n")
		for _, f := range t.Findings {
			switch {
			case f.Masked():
				w("      # %s, %s: %s\n", f.Confidence, f.Kind.Describe(), f.Evidence())
				writeColumn(&b, "      ", f)
			case f.Confidence == Low:
				w("      # low, not masked (review): %s: %s\n", f.Kind.Describe(), f.Evidence())
				writeColumn(&b, "      # ", f)
			}
		}
	}
	if len(unmasked) > 0 {
		w("\n# Tables with no column to mask:\n")
		for _, t := range unmasked {
			w("#   %s\n", tableLine(t))
			for _, f := range t.Findings {
				if f.Confidence == Low {
					w("#     low, not masked (review): %s (%s): %s\n", safe(f.Column.Name), f.Kind.Describe(), f.Evidence())
				}
			}
		}
	}
	if len(skipped) > 0 {
		w("\n# Tables not scanned:\n")
		for _, t := range skipped {
			w("#   %s.%s: %s\n", safe(t.Schema), safe(t.Name), safe(t.Skipped))
		}
	}
	var key []byte
	if res.HMAC {
		key = bytes.Repeat([]byte("k"), 32) // Parse only checks that one exists
	}
	if _, err := masking.Parse("generated masking file", b.Bytes(), key); err != nil {
		return nil, fmt.Errorf("the generated file does not load (a bug in generate-config): %w", err)
	}
	return b.Bytes(), nil
}

func tableLine(t *Table) string {
	kind := ""
	if t.Partitioned {
		kind = " (partitioned: its partitions are masked alike)"
	}
	method := ""
	if t.Method != "" {
		method = " (" + t.Method + ")"
	}
	return fmt.Sprintf("%s.%s%s: %d row%s sampled%s, %d column%s, %d masked",
		safe(t.Schema), safe(t.Name), kind, t.Sampled, plural(t.Sampled), method,
		len(t.Findings), plural(len(t.Findings)), len(t.Masked()))
}

func writeColumn(b *bytes.Buffer, indent string, f Finding) {
	fmt.Fprintf(b, "%s- name: %s\n", indent, yamlString(f.Column.Name))
	fmt.Fprintf(b, "%s  mask_type: %s\n", indent, yamlString(string(f.Mask)))
	if f.Mask == masking.Partial {
		fmt.Fprintf(b, "%s  params:\n", indent)
		fmt.Fprintf(b, "%s    visible_chars: %d\n", indent, f.Visible)
	}
}

func safeAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = safe(x)
	}
	return out
}

var plainRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reserved are words YAML 1.1 and 1.2 read as something else than a string.
var reserved = set("true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf")

// yamlString writes s as a YAML scalar: plain when it is an identifier
// YAML cannot misread, else double-quoted with escapes.
func yamlString(s string) string {
	if plainRE.MatchString(s) && !reserved[strings.ToLower(s)] {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
