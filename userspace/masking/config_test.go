package masking

import (
	"strings"
	"testing"
)

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"version: \"2\"\ntables: []\n", "line 1: version \"2\" is not supported"},
		{"version: \"1.0\"\ntables:\n  - table: t\n    columns:\n      - name: a\n        mask_type: partial\n", "line 5: column public.t.a: mask_type partial needs params.visible_chars"},
		{"version: \"1.0\"\ntables:\n  - table: t\n    columns:\n      - name: a\n        mask_type: sha1\n", "line 5: column public.t.a: mask_type \"sha1\" is not one of"},
		{"version: \"1.0\"\ntables:\n  - table: t\n    columns:\n      - {name: a, mask_type: hmac}\n", "MASKING_HMAC_KEY"},
		{"version: \"1.0\"\ntables:\n  - table: t\n    columns:\n      - {name: a, mask_type: full, params: {visible_chars: 2}}\n", "params.visible_chars does not apply to mask_type full"},
		{"version: \"1.0\"\ntables:\n  - table: t\n    columns:\n      - {name: a, mask_type: full}\n  - table: t\n    columns:\n      - {name: b, mask_type: full}\n", "line 6: table public.t is listed twice (first at line 3)"},
		{"version: \"1.0\"\ntables:\n  - table: t\n    columns: []\n", "table public.t has no columns to mask"},
		{"version: \"1.0\"\nunknown_table_behavior: guess\ntables: []\n", "line 2: unknown_table_behavior \"guess\""},
		{"version: \"1.0\"\ntables:\n  - table: t\n    colums: []\n", "colums"},
		{"", "the file is empty"},
	} {
		_, err := Parse("m.yaml", []byte(tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.yaml, err, tc.want)
		}
	}
}

func TestParseDefaultsAndRoles(t *testing.T) {
	c, err := Parse("m.yaml", []byte(`version: "1.0"
default_schema: sales
unmasked_roles: [dba]
tables:
  - table: t
    columns:
      - {name: a, mask_type: partial, params: {visible_chars: 3}}
  - schema: public
    table: u
    columns:
      - {name: b, mask_type: hmac}
`), []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Table("sales", "t") == nil || c.Table("public", "u") == nil || c.UnknownTable != Passthrough {
		t.Fatalf("%+v", c)
	}
	if col, _ := c.Table("sales", "t").Column("a"); col.Visible != 3 || col.Line != 7 {
		t.Fatalf("%+v", col)
	}
	if !c.Unmasked("", nil, "dba") || c.Unmasked("", nil, "app") {
		t.Error("passthrough sessions are matched by database user")
	}
	if !c.Unmasked("alice@x", []string{"dba"}, "svc") || c.Unmasked("alice@x", []string{"dev"}, "dba") {
		t.Error("token sessions are matched by their roles, not the service account")
	}
}

func TestMaskText(t *testing.T) {
	key := []byte("0123456789abcdef")
	for _, tc := range []struct {
		col  Column
		in   string
		want string
	}{
		{Column{Mask: Full}, "secret", FullText},
		{Column{Mask: Partial, Visible: 3}, "johnson", "joh***"},
		{Column{Mask: Partial, Visible: 3}, "joh", "***"},
		{Column{Mask: Partial, Visible: 2}, "Ålborg", "Ål***"},
		{Column{Mask: Email}, "john.doe@example.com", "j***@example.com"},
		{Column{Mask: Email}, "a@b@example.com", "a***@example.com"},
		{Column{Mask: Email}, "no-at-sign", FullText},
		{Column{Mask: Email}, "@example.com", FullText},
		{Column{Mask: Hash}, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	} {
		if got := string(MaskText(tc.col, key, []byte(tc.in))); got != tc.want {
			t.Errorf("%s(%q) = %q, want %q", tc.col.Mask, tc.in, got, tc.want)
		}
	}
	if MaskText(Column{Mask: Full}, nil, nil) != nil || MaskText(Column{Mask: Null}, nil, []byte("x")) != nil {
		t.Error("NULL must stay NULL, and null masks to NULL")
	}
	// RFC 4231, test case 2.
	if got := string(MaskText(Column{Mask: HMAC}, []byte("Jefe"), []byte("what do ya want for nothing?"))); got != "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("hmac: %s", got)
	}
	a, b := MaskText(Column{Mask: HMAC}, key, []byte("abc")), MaskText(Column{Mask: HMAC}, []byte("another key 0123"), []byte("abc"))
	if len(a) != 64 || string(a) == string(b) || string(a) == string(MaskText(Column{Mask: Hash}, nil, []byte("abc"))) {
		t.Errorf("hmac must depend on the key: %s %s", a, b)
	}
}
