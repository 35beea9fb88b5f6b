package generate

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pgproxy/pgproxy/userspace/masking"
)

// sampleResult is a scan of two tables with known values, one table with
// nothing to mask and one skipped.
func sampleResult(t *testing.T, hmac bool) (*Result, []string) {
	fixNow(t)
	emails := gen(20, func(r *rand.Rand, i int) string { return fmt.Sprintf("person%d@corp.example", i) })
	names := gen(20, func(r *rand.Rand, i int) string { return []string{"Alice", "Sipho", "Maria", "Nomvula"}[i%4] })
	said := gen(20, func(r *rand.Rand, i int) string {
		body := fmt.Sprintf("%02d%02d%02d%04d08", 60+r.IntN(39), 1+r.IntN(12), 1+r.IntN(28), r.IntN(10000))
		return body + luhnDigit(body)
	})
	births := gen(20, func(r *rand.Rand, i int) string { return fmt.Sprintf("%d-%02d-10", 1950+i*2, 1+i%12) })
	keys := gen(20, func(r *rand.Rand, i int) string { return hexKey(fmt.Sprint("k", i)) })
	findings := []Finding{
		Classify(Column{Name: "id", Type: "integer", Category: "N", BaseType: "int4"}, gen(20, func(_ *rand.Rand, i int) string { return fmt.Sprint(i) }), hmac),
		Classify(text("email"), emails, hmac),
		Classify(text("first_name"), names, hmac),
		Classify(text("id_number"), said, hmac),
		Classify(date("date_of_birth"), births, hmac),
		Classify(text("checksum"), keys, hmac),
		Classify(text(`Odd "name"`+"\n"), emails, hmac),
		Classify(text("yes"), emails, hmac),
	}
	res := &Result{
		Database: "app", Schemas: []string{"public"}, SampleRows: 1000, HMAC: hmac,
		Tables: []Table{
			{Schema: "public", Name: "customers", Sampled: 20, Method: "LIMIT", Findings: findings},
			{Schema: "public", Name: "products", Sampled: 20, Method: "LIMIT", Findings: []Finding{
				Classify(text("sku"), gen(20, func(_ *rand.Rand, i int) string { return fmt.Sprintf("SKU-%d", i) }), hmac),
				Classify(text("digest"), keys, hmac),
			}},
			{Schema: "public", Name: "events", Partitioned: true, Sampled: 20, Method: "LIMIT", Findings: []Finding{Classify(text("user_email"), emails, hmac)}},
			{Schema: "public", Name: "vault", Skipped: "permission denied: permission denied for table vault (GRANT SELECT on it to scan it)"},
		},
	}
	var values []string
	for _, vs := range [][]string{emails, names, said, births, keys} {
		values = append(values, vs...)
	}
	return res, values
}

func TestRenderParses(t *testing.T) {
	for _, hmac := range []bool{false, true} {
		res, values := sampleResult(t, hmac)
		out, err := Render(res)
		if err != nil {
			t.Fatal(err)
		}
		var key []byte
		if hmac {
			key = []byte("0123456789abcdef0123")
		}
		cfg, err := masking.Parse("out.yaml", out, key)
		if err != nil {
			t.Fatalf("hmac %v: %v\n%s", hmac, err, out)
		}
		if len(cfg.Tables) != 2 || cfg.Tables[0].Name != "customers" || cfg.Tables[1].Name != "events" {
			t.Fatalf("tables %+v\n%s", cfg.Tables, out)
		}
		want := map[string]masking.MaskType{"email": masking.Email, "first_name": masking.Partial,
			"date_of_birth": masking.Null, `Odd "name"` + "\n": masking.Email, "yes": masking.Email}
		if hmac {
			want["id_number"] = masking.HMAC
		} else {
			want["id_number"] = masking.Full
		}
		got := map[string]masking.MaskType{}
		for _, c := range cfg.Tables[0].Columns {
			got[c.Name] = c.Mask
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("hmac %v: masks %v, want %v\n%s", hmac, got, want, out)
		}
		if c, _ := cfg.Tables[0].Column("first_name"); c.Visible != 1 {
			t.Errorf("first_name visible_chars %d", c.Visible)
		}
		if cfg.UnknownTable != masking.Passthrough || cfg.DefaultSchema != "public" {
			t.Errorf("header: %+v", cfg)
		}
		text := string(out)
		for _, v := range values {
			if strings.Contains(text, v) {
				t.Errorf("the file shows the sampled value %q", v)
			}
		}
		for _, want := range []string{
			`version: "1.0"`,
			"      # high, email address: values: email 20/20 sampled (100%); name: strong (email)\n      - name: email\n        mask_type: email\n",
			"      # high, South African ID number: values: sa-id 20/20 sampled (100%); name: strong (id number)\n",
			"      # low, not masked (review): secret or credential: values: high-entropy 20/20 sampled (100%); name: no signal",
			"      # - name: checksum\n      #   mask_type: full\n",
			"  - schema: public\n    table: events\n",
			"public.events (partitioned: its partitions are masked alike)",
			"# Tables with no column to mask:\n#   public.products: 20 rows sampled (LIMIT), 2 columns, 0 masked\n#     low, not masked (review): digest",
			"# Tables not scanned:\n#   public.vault: permission denied",
			`- name: "Odd \"name\"\x0a"`,
			`- name: "yes"`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("hmac %v: the file lacks %q:\n%s", hmac, want, text)
			}
		}
		// One comment per column entry, masked or suggested.
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimLeft(l, " #"), "- name: ") && !strings.Contains(lines[i-1], "# ") {
				t.Errorf("line %d %q has no comment above it", i+1, l)
			}
		}
		again, _ := Render(res)
		if !bytes.Equal(out, again) {
			t.Error("two renders of one scan differ")
		}
	}
}

func TestRenderNothingToMask(t *testing.T) {
	res := &Result{Database: "app", Schemas: []string{"a", "b"}, SampleRows: 10, Tables: []Table{
		{Schema: "a", Name: "t", Sampled: 3, Findings: []Finding{Classify(text("status"), []string{"x", "y", "z"}, false)}},
	}}
	out, err := Render(res)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := masking.Parse("out.yaml", out, nil)
	if err != nil || len(cfg.Tables) != 0 {
		t.Fatalf("%v %+v\n%s", err, cfg, out)
	}
	if !strings.Contains(string(out), "tables: []\n") || !strings.Contains(string(out), "schemas a, b") {
		t.Errorf("file:\n%s", out)
	}
}

func TestYAMLString(t *testing.T) {
	for in, want := range map[string]string{
		"email": "email", "Email_2": "Email_2", "yes": `"yes"`, "NULL": `"NULL"`, "2fa": `"2fa"`,
		"a b": `"a b"`, `q"\`: `"q\"\\"`, "tab\t": `"tab\x09"`, "ünï": `"ünï"`, "": `""`,
	} {
		if got := yamlString(in); got != want {
			t.Errorf("yamlString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSampleSQL(t *testing.T) {
	sql, method := SampleSQL("public", "Big T", []string{"email", `we"ird`}, 1e6, 1000, useTablesample(1e6, 1000))
	if want := `SELECT pg_catalog.left(CAST("email" AS pg_catalog.text), 2048), pg_catalog.left(CAST("we""ird" AS pg_catalog.text), 2048) FROM "public"."Big T" TABLESAMPLE SYSTEM (0.2000) REPEATABLE (0) LIMIT 1000`; sql != want {
		t.Errorf("big table:\n%s\nwant\n%s", sql, want)
	}
	if !strings.HasPrefix(method, "TABLESAMPLE SYSTEM 0.2% of ~1000000 rows") {
		t.Errorf("method %q", method)
	}
	for _, est := range []float64{-1, 0, 300, 5000} {
		if useTablesample(est, 1000) {
			t.Errorf("a table estimated at %v rows is sampled with TABLESAMPLE", est)
		}
	}
	sql, method = SampleSQL("s", "t", []string{"c"}, 300, 1000, false)
	if sql != `SELECT pg_catalog.left(CAST("c" AS pg_catalog.text), 2048) FROM "s"."t" LIMIT 1000` || method != "LIMIT" {
		t.Errorf("small table: %s (%s)", sql, method)
	}
}
