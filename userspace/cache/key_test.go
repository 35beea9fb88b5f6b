package cache

import (
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct{ db, fp, want string }{
		{"shop", "5f3e8c1a2b4d6e70", "pgproxy:decision:shop:5f3e8c1a2b4d6e70"},
		{"my-db_1.x", "ab", "pgproxy:decision:my-db_1.x:ab"},
		{"a:b", "c", "pgproxy:decision:a%3Ab:c"},
		{"a", "b:c", "pgproxy:decision:a:b%3Ac"},
		{"*", "?", "pgproxy:decision:%2A:%3F"},
		{"{tag}", "x", "pgproxy:decision:%7Btag%7D:x"},
		{"50%", "x", "pgproxy:decision:50%25:x"},
		{"new\nline db", "x", "pgproxy:decision:new%0Aline%20db:x"},
		{"zoë", "x", "pgproxy:decision:zo%C3%AB:x"},
		{"", "", "pgproxy:decision::"},
	} {
		got := Key(tc.db, tc.fp)
		if got != tc.want {
			t.Errorf("Key(%q, %q) = %q, want %q", tc.db, tc.fp, got, tc.want)
		}
		db, fp, ok := ParseKey(got)
		if !ok || db != tc.db || fp != tc.fp {
			t.Errorf("ParseKey(%q) = %q, %q, %v", got, db, fp, ok)
		}
	}
}

func TestKeyNoCollision(t *testing.T) {
	pairs := [][2]string{{"a:b", "c"}, {"a", "b:c"}, {"a%3Ab", "c"}, {"a", "b%3Ac"}, {"ab", "c"}, {"a", "bc"}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		k := Key(p[0], p[1])
		if prev, dup := seen[k]; dup {
			t.Fatalf("%v and %v share key %q", prev, p, k)
		}
		seen[k] = p
		if strings.Count(k, ":") != 3 {
			t.Errorf("key %q has other colons than its separators", k)
		}
	}
}

func TestParseKeyRefuses(t *testing.T) {
	for _, k := range []string{
		"other:shop:x", "pgproxy:decision:shop", "pgproxy:decision:a:b:c",
		"pgproxy:decision:%41:x",  // "A" spelled escaped: not what Key writes
		"pgproxy:decision:%3a:x",  // lower-case hex
		"pgproxy:decision:%3:x",   // short escape
		"pgproxy:decision:a b:x",  // unescaped space
		"pgproxy:decision:shop:*", // a database pattern, not a key
	} {
		if db, fp, ok := ParseKey(k); ok {
			t.Errorf("ParseKey(%q) = %q, %q, true", k, db, fp)
		}
	}
	if db, ok := parsePattern(databasePattern("a:b*")); !ok || db != "a:b*" {
		t.Errorf("parsePattern(databasePattern) = %q, %v", db, ok)
	}
	if _, ok := parsePattern("pgproxy:decision:a:b:*"); ok {
		t.Error("parsePattern accepted a pattern with two colons in the database")
	}
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{"shop", "a:b", "%", "*", "zoë", "\x00", ""} {
		f.Add(s, "5f3e8c1a2b4d6e70")
	}
	f.Fuzz(func(t *testing.T, db, fp string) {
		k := Key(db, fp)
		gotDB, gotFP, ok := ParseKey(k)
		if !ok || gotDB != db || gotFP != fp {
			t.Fatalf("ParseKey(Key(%q, %q)) = %q, %q, %v", db, fp, gotDB, gotFP, ok)
		}
		if strings.ContainsAny(k[len(KeyPrefix):], "*?[]\\{} \r\n") {
			t.Fatalf("key %q has a glob, hash-tag or space character", k)
		}
		if !strings.HasPrefix(k, databasePattern(db)[:len(databasePattern(db))-1]) {
			t.Fatalf("key %q does not match its database pattern %q", k, databasePattern(db))
		}
	})
}
