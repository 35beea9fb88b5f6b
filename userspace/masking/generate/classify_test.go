package generate

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pgproxy/pgproxy/userspace/masking"
)

var (
	text    = func(name string) Column { return Column{Name: name, Type: "text", Category: "S", BaseType: "text"} }
	bigint  = func(name string) Column { return Column{Name: name, Type: "bigint", Category: "N", BaseType: "int8"} }
	date    = func(name string) Column { return Column{Name: name, Type: "date", Category: "D", BaseType: "date"} }
	boolean = func(name string) Column { return Column{Name: name, Type: "boolean", Category: "B", BaseType: "bool"} }
	bytea   = func(name string) Column { return Column{Name: name, Type: "bytea", Category: "U", BaseType: "bytea"} }
)

func gen(n int, f func(r *rand.Rand, i int) string) []string {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		out[i] = f(r, i)
	}
	return out
}

func TestClassify(t *testing.T) {
	fixNow(t)
	emails := gen(100, func(r *rand.Rand, i int) string { return fmt.Sprintf("user%d@example.org", i) })
	cards := gen(100, func(r *rand.Rand, i int) string {
		body := fmt.Sprintf("4%014d", r.Int64N(1e14))
		return body + luhnDigit(body)
	})
	randomDigits := gen(100, func(r *rand.Rand, i int) string { return fmt.Sprintf("4%015d", r.Int64N(1e15)) })
	births := gen(100, func(r *rand.Rand, i int) string {
		return fmt.Sprintf("%d-%02d-%02d", 1945+r.IntN(60), 1+r.IntN(12), 1+r.IntN(28))
	})
	hires := gen(100, func(r *rand.Rand, i int) string { return fmt.Sprintf("%d-%02d-01", 2003+r.IntN(22), 1+r.IntN(12)) })
	keys := gen(100, func(r *rand.Rand, i int) string { return hexKey(fmt.Sprint(i)) })
	orders := gen(100, func(r *rand.Rand, i int) string { return fmt.Sprintf("SO%08d", r.IntN(1e8)) })
	statuses := gen(100, func(r *rand.Rand, i int) string { return []string{"active", "pending", "closed"}[i%3] })
	notes := gen(100, func(r *rand.Rand, i int) string {
		return []string{"Called about the delivery", "Asked to write to ops@example.com", "VIP", "Prefers mornings"}[i%4]
	})
	firsts := gen(100, func(r *rand.Rand, i int) string { return []string{"Alice", "Zodwa", "Kagiso", "John", "Ayanda"}[i%5] })
	products := gen(100, func(r *rand.Rand, i int) string { return fmt.Sprintf("Widget %d Pro", i) })
	ssns := gen(100, func(r *rand.Rand, i int) string {
		return fmt.Sprintf("%03d-%02d-%04d", 1+r.IntN(660), 1+r.IntN(98), 1+r.IntN(9998))
	})
	passports := gen(100, func(r *rand.Rand, i int) string { return fmt.Sprintf("M%08d", r.IntN(1e8)) })

	for _, tc := range []struct {
		col    Column
		values []string
		hmac   bool
		conf   Confidence
		kind   Kind
		mask   masking.MaskType
	}{
		{text("email"), emails, false, High, KindEmail, masking.Email},
		{text("contact"), emails, false, High, KindEmail, masking.Email}, // values decide
		{text("reference"), cards, true, High, KindCard, masking.HMAC},
		{text("card_number"), cards, false, High, KindCard, masking.Full},
		{bigint("tracking_code"), randomDigits, false, "", "", ""}, // Luhn passes 10%
		{date("date_of_birth"), births, false, High, KindDOB, masking.Null},
		{date("born"), nil, false, Medium, KindDOB, masking.Null},  // name only, no values
		{date("d1"), births, false, Medium, KindDOB, masking.Null}, // the range says birth
		{date("hire_date"), hires, false, "", "", ""},
		{text("token"), keys, false, High, KindSecret, masking.Full},
		{text("payload_sha256"), keys, false, Low, KindSecret, masking.Full}, // checksum or key: review
		{text("order_number"), orders, false, Low, KindPassport, masking.Full},
		{text("passport_no"), passports, true, High, KindPassport, masking.HMAC},
		{text("status"), statuses, false, "", "", ""},
		{text("notes"), notes, false, "", "", ""},
		{text("first_name"), firsts, false, Medium, KindName, masking.Partial}, // 2 of 5 names known: name carries it
		{text("name"), products, false, "", "", ""},                            // a product's name
		{boolean("email_verified"), []string{"true", "false"}, false, "", "", ""},
		{bytea("password"), nil, false, Medium, KindSecret, masking.Null},
		{text("ssn"), ssns, true, High, KindSSN, masking.HMAC},
		{text("tax_ref"), ssns, false, High, KindSSN, masking.Full},
		{text("few"), emails[:3], false, "", "", ""}, // too few values to judge
	} {
		f := Classify(tc.col, tc.values, tc.hmac)
		if f.Confidence != tc.conf || f.Kind != tc.kind || f.Mask != tc.mask {
			t.Errorf("%s: got %q %q %q, want %q %q %q (%s)", tc.col.Name, f.Confidence, f.Kind, f.Mask,
				tc.conf, tc.kind, tc.mask, f.Evidence())
		}
		for _, v := range tc.values {
			if len(v) >= 4 && strings.Contains(f.Evidence(), v) {
				t.Errorf("%s: the evidence %q shows the value %q", tc.col.Name, f.Evidence(), v)
			}
		}
	}
}

func TestClassifyNames(t *testing.T) {
	full := Classify(text("customer_name"), []string{"Alice Smith", "Bob Jones", "Zola Budd", "Ann Lee", "Tom Hall"}, false)
	if full.Mask != masking.Partial || full.Visible != 2 || full.Confidence != High {
		t.Errorf("customer_name: %+v", full)
	}
	first := Classify(text("first_name"), []string{"Alice", "Bob", "Zola", "Ann", "Tom"}, false)
	if first.Mask != masking.Partial || first.Visible != 1 {
		t.Errorf("first_name: %+v", first)
	}
}

func TestEvidence(t *testing.T) {
	f := Classify(text("email"), gen(10, func(r *rand.Rand, i int) string { return fmt.Sprintf("u%d@example.org", i) }), false)
	if got, want := f.Evidence(), "values: email 10/10 sampled (100%); name: strong (email)"; got != want {
		t.Errorf("evidence %q, want %q", got, want)
	}
}
