package metadata_test

import (
	"context"
	"errors"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/analysis"
	"github.com/pgproxy/pgproxy/userspace/metadata"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// TestFactsForRules wires the cache to the rules the way the proxy does:
// the tables a statement references (sqlparse.Tables) are looked up, and
// the rules judge the statement with those facts, read from a real
// catalog (statistics set as the superuser to make tables big).
func TestFactsForRules(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, `
		DROP SCHEMA IF EXISTS meta_rules CASCADE; CREATE SCHEMA meta_rules;
		GRANT USAGE ON SCHEMA meta_rules TO PUBLIC;
		CREATE TABLE meta_rules.users (id bigint PRIMARY KEY, email text, name text, created_at timestamptz);
		CREATE INDEX ON meta_rules.users (email);
		CREATE INDEX ON meta_rules.users (created_at);
		CREATE TABLE meta_rules.logins (id bigint, user_id bigint, at timestamptz) PARTITION BY RANGE (at);
		CREATE TABLE meta_rules.logins_2025 PARTITION OF meta_rules.logins FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		CREATE TABLE meta_rules.logins_2026 PARTITION OF meta_rules.logins FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		CREATE TABLE meta_rules."Settings" (k text PRIMARY KEY, v text);
		CREATE TABLE meta_rules.notes (id bigint PRIMARY KEY, body text);
		CREATE INDEX ON meta_rules.notes (lower(body));
		CREATE VIEW meta_rules.active_users AS SELECT * FROM meta_rules.users WHERE created_at > now() - interval '1 year';
		UPDATE pg_class SET reltuples = 3e6, relpages = 30000 WHERE oid = 'meta_rules.users'::regclass;
		UPDATE pg_class SET reltuples = 8e5, relpages = 8000 WHERE oid = 'meta_rules.logins_2025'::regclass;
		UPDATE pg_class SET reltuples = 9e5, relpages = 9000 WHERE oid = 'meta_rules.logins_2026'::regclass;
		UPDATE pg_class SET reltuples = 40, relpages = 1 WHERE oid = 'meta_rules."Settings"'::regclass;
		UPDATE pg_class SET reltuples = 2e6, relpages = 20000 WHERE oid = 'meta_rules.notes'::regclass;`)
	pool, _ := newPool(t, pg, map[string]string{"search_path": "meta_rules, public"})
	cache := metadata.New(pool, metadata.Options{})
	rules := analysis.Rules{Thresholds: analysis.DefaultThresholds}

	cases := []struct{ sql, check string }{
		{"SELECT * FROM users", analysis.CheckUnfilteredRead},
		{"SELECT count(*) FROM meta_rules.logins", analysis.CheckFullAggregate}, // 1.7M summed over partitions
		{"SELECT * FROM users WHERE lower(email) = $1", analysis.CheckFunctionOnColumn},
		{"SELECT * FROM users WHERE created_at::date = $1", analysis.CheckFunctionOnColumn},
		{"SELECT * FROM users WHERE name LIKE '%' || $1", analysis.CheckLeadingWildcard},
		{"SELECT * FROM users u, logins l", analysis.CheckCartesianJoin},
		{"SELECT * FROM users WHERE id NOT IN (SELECT user_id FROM logins)", analysis.CheckNotInSubquery},
		{"SELECT * FROM users ORDER BY random() LIMIT 3", analysis.CheckOrderByRandom},
		{"SELECT * FROM users ORDER BY id LIMIT 50 OFFSET 5000000", analysis.CheckLargeOffset},
		{"SELECT * FROM users WHERE email = $1", ""},
		{"SELECT * FROM users WHERE created_at > $1 ORDER BY created_at LIMIT 20", ""},
		{`SELECT * FROM "Settings"`, ""},
		{"SELECT * FROM notes WHERE lower(body) = $1", ""}, // an expression index may serve it
		{"SELECT * FROM active_users", ""},                 // a view: left to the planner
		{"SELECT * FROM my_temp_table", ""},                // not visible to the proxy's pool
	}
	for _, c := range cases {
		tree, err := pg_query.Parse(c.sql)
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		facts := map[sqlparse.TableRef]*metadata.Table{}
		for _, ref := range sqlparse.Tables(tree) {
			tab, err := cache.Lookup(context.Background(), ref.Schema, ref.Name)
			if err != nil && !errors.Is(err, metadata.ErrNotFound) {
				t.Fatalf("%s: lookup %v: %v", c.sql, ref, err)
			}
			facts[ref] = tab
		}
		d, fired := rules.Check(tree, func(schema, name string) *metadata.Table {
			return facts[sqlparse.TableRef{Schema: schema, Name: name}]
		})
		switch {
		case c.check == "" && fired:
			t.Errorf("%s: fired %s: %s", c.sql, d.Check, d.Reason)
		case c.check != "" && d.Check != c.check:
			t.Errorf("%s: fired %v %q, want %s", c.sql, fired, d.Check, c.check)
		}
	}
	// The reason names the table as the catalog knows it, with its estimate.
	tree, _ := pg_query.Parse("SELECT * FROM users")
	d, _ := rules.Check(tree, func(schema, name string) *metadata.Table {
		tab, _ := cache.Lookup(context.Background(), schema, name)
		return tab
	})
	if want := "query reads meta_rules.users (about 3,000,000 rows) without a WHERE or LIMIT"; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
}
