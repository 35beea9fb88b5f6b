package generate

import (
	"fmt"
	"strings"

	"github.com/pgproxy/pgproxy/userspace/masking"
)

// Confidence says how sure the generator is that a column is sensitive.
type Confidence string

// The confidences. High and medium columns are masked in the generated
// file; low ones are left as commented-out suggestions.
const (
	High   Confidence = "high"
	Medium Confidence = "medium"
	Low    Confidence = "low"
)

const (
	// threshold is the share of non-null sampled values that must match
	// for the values alone to make a column sensitive.
	threshold = 0.6
	// certain is the share from which values alone give high confidence.
	certain = 0.9
	// hint is the share from which some values are worth a low note.
	hint = 0.3
	// minValues is the fewest non-null values a share is judged on.
	minValues = 5
)

// heuristic are kinds whose values are judged without a validator (a
// date range, a list of common names, a street pattern): alone they give
// medium confidence at most.
var heuristic = map[Kind]bool{KindDOB: true, KindName: true, KindFullName: true, KindAddress: true}

// Column is one column as the catalog describes it.
type Column struct {
	Name string
	// Type is the type as format_type writes it (character varying(40)).
	Type string
	// Category is pg_type.typcategory; BaseType the type's name (a
	// domain's base type).
	Category, BaseType string
}

func (c Column) class() typeClass { return classOf(c.Category, c.BaseType) }

// sampled reports whether the column's values are read: text, numbers,
// dates and network addresses. Others (bytea, booleans, JSON, arrays) are
// judged by name alone.
func (c Column) sampled() bool {
	switch c.class() {
	case classText, classNumeric, classDate, classNet:
		return true
	}
	return false
}

// Finding is the verdict on one column.
type Finding struct {
	Column Column
	// Confidence is "" for a column that is not sensitive.
	Confidence Confidence
	Kind       Kind
	Mask       masking.MaskType
	Visible    int
	// Detectors are the evidence names of the detectors that matched the
	// values of Kind, Matched of Values the values they matched.
	Detectors       []string
	Matched, Values int
	// Name is what the column's name says (HasName false: nothing).
	Name    NameSignal
	HasName bool
	// Why is the reason in words for a low or name-only verdict.
	Why string
	// Model names the language model asked about the column
	// (provider/model), ModelReason its reason; "" when none was asked.
	Model, ModelReason string

	// unanswered says why the model was not asked or gave no answer
	// about a low finding ("" when it answered or was not needed).
	unanswered string
}

// Masked reports whether the column gets a mask in the file.
func (f Finding) Masked() bool { return f.Confidence == High || f.Confidence == Medium }

// Share is Matched/Values (0 without values).
func (f Finding) Share() float64 {
	if f.Values == 0 {
		return 0
	}
	return float64(f.Matched) / float64(f.Values)
}

// kindStats counts, for one kind, the values its detectors matched.
type kindStats struct {
	strict, loose int // strict: detectors that are not weak
	detectors     []string
}

// Classify judges one column from its name and its non-null sampled
// values; hmac says whether a keyed-hash key is configured.
func Classify(col Column, values []string, hmac bool) Finding {
	f := Finding{Column: col, Values: len(values)}
	class := col.class()
	f.Name, f.HasName = nameSignal(col.Name)
	if f.HasName && !fits(f.Name.Kind, class) {
		f.HasName = false
	}
	stats := valueStats(class, values)
	share := func(n int) float64 {
		if len(values) < minValues {
			return 0
		}
		return float64(n) / float64(len(values))
	}
	set := func(k Kind, c Confidence, s *kindStats, matched int) {
		f.Kind, f.Confidence = k, c
		if s != nil {
			f.Detectors, f.Matched = s.detectors, matched
		}
		f.Mask, f.Visible = maskFor(k, class, hmac)
	}

	// 1. The values alone: a strict detector matches enough of them.
	best, bestN := Kind(""), 0
	for _, k := range kindOrder {
		if s := stats[k]; s != nil && s.strict > bestN {
			best, bestN = k, s.strict
		}
	}
	if best != "" && share(bestN) >= threshold {
		c := Medium
		if share(bestN) >= certain && !heuristic[best] || f.HasName && related(f.Name.Kind, best) {
			c = High
		}
		k := best
		if f.HasName && related(f.Name.Kind, best) && (f.Name.Kind == KindName || f.Name.Kind == KindFullName) {
			k = f.Name.Kind
		}
		set(k, c, stats[best], bestN)
		if f.HasName && !related(f.Name.Kind, best) {
			f.Why = fmt.Sprintf("the name suggests %s, the values say %s", f.Name.Kind.Describe(), best.Describe())
		}
		return f
	}

	// 2. The name, with the values of its kind (and related kinds) as
	// support.
	if f.HasName {
		var s *kindStats
		n := 0
		for _, k := range kindOrder {
			if st := stats[k]; st != nil && related(f.Name.Kind, k) && st.loose > n {
				s, n = st, st.loose
			}
		}
		sh := share(n)
		switch {
		case f.Name.Strong && sh >= threshold:
			set(f.Name.Kind, High, s, n)
		case f.Name.Strong:
			set(f.Name.Kind, Medium, s, n)
			f.Why = nameOnlyWhy(col, len(values), sh)
		case sh >= certain:
			set(f.Name.Kind, High, s, n)
		case sh >= threshold:
			set(f.Name.Kind, Medium, s, n)
		case len(values) >= minValues && sh < 0.1:
			// A weak name the values contradict (a product's name).
			return Finding{Column: col, Values: len(values)}
		default:
			set(f.Name.Kind, Low, s, n)
			f.Why = "the name may say " + f.Name.Kind.Describe() + "; " + nameOnlyWhy(col, len(values), sh)
		}
		return f
	}

	// 3. Shapes that need a name to count (keys or checksums, passport
	// numbers or codes): a note for the operator.
	for _, k := range []Kind{KindSecret, KindPassport} {
		if s := stats[k]; s != nil && share(s.loose) >= threshold {
			set(k, Low, s, s.loose)
			f.Why = "the shape fits, but it is shared by other data and the name says nothing"
			return f
		}
	}
	// 4. Some values match.
	if best != "" && share(bestN) >= hint {
		set(best, Low, stats[best], bestN)
		f.Why = fmt.Sprintf("below the %.0f%% of values needed", threshold*100)
		return f
	}
	return Finding{Column: col, Values: len(values)}
}

func nameOnlyWhy(col Column, n int, sh float64) string {
	switch {
	case !col.sampled():
		return "values not sampled (type " + col.Type + ")"
	case n == 0:
		return "no non-null value sampled"
	case n < minValues:
		return fmt.Sprintf("only %d non-null values sampled", n)
	case sh == 0:
		return "no sampled value has a shape the generator checks"
	}
	return fmt.Sprintf("only %.0f%% of values match", sh*100)
}

// valueStats runs the detectors that fit the column's class on every value.
func valueStats(class typeClass, values []string) map[Kind]*kindStats {
	stats := map[Kind]*kindStats{}
	if len(values) == 0 {
		return stats
	}
	matched := map[string]int{}
	for _, v := range values {
		var strictKinds, looseKinds [32]bool // by index in kindOrder
		for _, d := range detectors {
			if !fits(d.kind, class) || !d.match(v) {
				continue
			}
			matched[d.name+"\x00"+string(d.kind)]++
			i := kindIndex(d.kind)
			looseKinds[i] = true
			if !d.weak {
				strictKinds[i] = true
			}
		}
		for i, k := range kindOrder {
			if looseKinds[i] {
				s := stats[k]
				if s == nil {
					s = &kindStats{}
					stats[k] = s
				}
				s.loose++
				if strictKinds[i] {
					s.strict++
				}
			}
		}
	}
	for _, d := range detectors {
		if s := stats[d.kind]; s != nil && matched[d.name+"\x00"+string(d.kind)] > 0 && !contains(s.detectors, d.name) {
			s.detectors = append(s.detectors, d.name)
		}
	}
	if fits(KindDOB, class) {
		plausible, column := birthDates(values)
		if plausible > 0 {
			s := &kindStats{loose: plausible, detectors: []string{"birth-date-range"}}
			if column {
				s.strict = plausible
			}
			stats[KindDOB] = s
		}
	}
	return stats
}

func kindIndex(k Kind) int {
	for i, o := range kindOrder {
		if o == k {
			return i
		}
	}
	panic("generate: kind " + string(k) + " is not in kindOrder")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Evidence is the finding in words for the file's comment: the detectors
// and the share of sampled values they matched, and the name signal.
// It names no value.
func (f Finding) Evidence() string {
	var b strings.Builder
	switch {
	case !f.Column.sampled():
		b.WriteString("values not sampled (" + f.Column.Type + ")")
	case f.Values == 0:
		b.WriteString("no non-null value sampled")
	case len(f.Detectors) == 0:
		fmt.Fprintf(&b, "values: none of %d sampled matched", f.Values)
	default:
		fmt.Fprintf(&b, "values: %s %d/%d sampled (%.0f%%)", strings.Join(f.Detectors, "+"), f.Matched, f.Values, f.Share()*100)
	}
	b.WriteString("; name: ")
	switch {
	case !f.HasName:
		b.WriteString("no signal")
	case f.Name.Strong:
		fmt.Fprintf(&b, "strong (%s)", f.Name.Words)
	default:
		fmt.Fprintf(&b, "weak (%s)", f.Name.Words)
	}
	if f.Why != "" {
		b.WriteString("; " + f.Why)
	}
	if f.Model != "" {
		fmt.Fprintf(&b, "; model %s: %s", f.Model, f.ModelReason)
	}
	return safe(b.String())
}
