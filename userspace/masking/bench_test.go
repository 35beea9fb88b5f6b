package masking

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
)

// reportQuantiles adds p50 and p99 of the per-iteration times to b.
func reportQuantiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
}

// policyWith returns a policy whose catalog is c for every database.
func policyWith(c *Catalog) *Policy {
	p := NewPolicy(c.cfg, nil, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.catalogs[catalogKey{"", "bench"}] = &catalogEntry{cfg: c.cfg, cat: c, loaded: time.Now()}
	return p
}

// BenchmarkRewriteUncached is the time to rewrite a statement over a
// masked table from its text: parse, rewrite, deparse (what the first
// execution of a text costs).
func BenchmarkRewriteUncached(b *testing.B) {
	c := testCatalog(b)
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		sql := "SELECT c.id, c.email, o.total FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = " + strconv.Itoa(i)
		start := time.Now()
		tree, err := pg_query.Parse(sql)
		if err != nil {
			b.Fatal(err)
		}
		if res := c.Rewrite(sql, tree); !res.Changed {
			b.Fatal("not rewritten")
		}
		took = append(took, time.Since(start))
	}
	reportQuantiles(b, took)
}

// BenchmarkDecideRewriteCached is the policy's time for a text it has
// rewritten before (a prepared statement, a repeated query): the extra
// latency a rewritten statement costs once cached.
func BenchmarkDecideRewriteCached(b *testing.B) {
	benchDecide(b, "SELECT id, email FROM customers WHERE id = 42", stmt.Rewrite)
}

// BenchmarkDecideUntouched is the policy's time for a statement that
// touches no masked table, of a shape seen before (constants differ).
func BenchmarkDecideUntouched(b *testing.B) {
	benchDecide(b, "SELECT abalance FROM pgbench_accounts WHERE aid = ", stmt.Allow)
}

func benchDecide(b *testing.B, sql string, want stmt.Action) {
	c := testCatalog(b)
	p := policyWith(c)
	parser := sqlparse.NewParser(1024)
	facts := &stmt.Facts{User: "app", Database: "bench"}
	var st stmt.Statement
	var took []time.Duration
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		text := sql
		if want == stmt.Allow {
			text = sql + strconv.Itoa(i%100000)
		}
		start := time.Now()
		st.Reset(stmt.Simple, "", "", text, nil, facts, parser)
		d := p.Decide(ctx, &st)
		took = append(took, time.Since(start))
		if d.Action != want {
			b.Fatalf("action %v, want %v (%+v)", d.Action, want, d.Err)
		}
	}
	reportQuantiles(b, took)
}
