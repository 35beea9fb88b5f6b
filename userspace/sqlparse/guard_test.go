package sqlparse

import (
	"strconv"
	"strings"
	"testing"
)

func TestChangesSetting(t *testing.T) {
	p := NewParser(16)
	cases := map[string]bool{
		"SET application_name = 'x'":                                                  true,
		"set LOCAL Application_Name to 'x'":                                           true,
		"RESET application_name":                                                      true,
		"SELECT set_config('application_name', 'x', false)":                           true,
		"SELECT pg_catalog.set_config('APPLICATION_NAME'::text, 'x', true)":           true,
		"SELECT set_config(current_user, 'x', false)":                                 true,
		"UPDATE pg_settings SET setting = 'x' WHERE name = 'application_name'":        true,
		"SELECT 1; SET application_name = 'x'":                                        true,
		"WITH s AS (SELECT set_config('application_name','x',false)) SELECT * FROM s": true,
		"SET search_path = public":                                                    false,
		"SELECT set_config('search_path', 'public', false)":                           false,
		"RESET ALL":                                  false,
		"SELECT 'SET application_name = x'":          false,
		"SELECT current_setting('application_name')": false,
	}
	for sql, want := range cases {
		parsed := p.Parse(sql)
		if parsed.Err != nil {
			t.Fatalf("%s: %v", sql, parsed.Err)
		}
		if got := ChangesSetting(parsed.Tree(), "application_name"); got != want {
			t.Errorf("%s: ChangesSetting = %v, want %v", sql, got, want)
		}
	}
}

func TestParserCache(t *testing.T) {
	p := NewParser(2)
	a := p.Parse("SELECT 1")
	if p.Parse("SELECT 1") != a {
		t.Fatal("second parse of the same text was not served from the cache")
	}
	p.Parse("SELECT 2, 3") // other shapes
	p.Parse("SELECT 3, 4, 5")
	if p.Parse("SELECT 1") == a {
		t.Fatal("cache kept more entries than its size")
	}
	if p.Parse("SELEC 1").Err == nil {
		t.Fatal("syntax error not reported")
	}
}

func BenchmarkParseCached(b *testing.B) {
	p := NewParser(100)
	for b.Loop() {
		p.Parse("SELECT abalance FROM pgbench_accounts WHERE aid = $1")
	}
}

func TestParserCacheIsBoundedByTreeSize(t *testing.T) {
	defer func(old int64) { maxCacheBytes = old }(maxCacheBytes)
	maxCacheBytes = 2 << 20
	p := NewParser(100000)
	// Short texts with large trees.
	big := "SELECT 0" + strings.Repeat(",(1)", 500)
	for i := range 200 {
		p.Parse(big + "," + strconv.Itoa(i))
	}
	if got := p.CachedBytes(); got > maxCacheBytes {
		t.Fatalf("cache holds an estimated %d bytes, over the %d budget", got, maxCacheBytes)
	}
	if p.CachedBytes() <= 0 {
		t.Fatal("nothing cached")
	}
}
