package analysis

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestAnalyzeFilter(t *testing.T) {
	for _, c := range []struct {
		filter, alias string
		display       string
		cols          []string
	}{
		{"(big.note = 'x'::text)", "big", "(note = $1::text)", []string{"note"}},
		{"((big.note = 'x'::text) AND (big.grp > 5))", "big", "((note = $1::text) AND (grp > $2))", []string{"note", "grp"}},
		{"((big.grp > 5) AND (big.note = 'x'::text) AND (big.id < 9))", "big", "((grp > $1) AND (note = $2::text) AND (id < $3))", []string{"note", "grp"}},
		{"(('x'::text = big.note) AND (7 < big.grp))", "big", "(($1::text = note) AND ($2 < grp))", []string{"note", "grp"}},
		{"((big.grp >= 1) AND (big.grp <= 5))", "big", "((grp >= $1) AND (grp <= $2))", []string{"grp"}},
		{"(big.id = ANY ('{1,2}'::integer[]))", "big", "(id = ANY ($1::integer[]))", []string{"id"}},
		{"(big.payload ~~ '%x%'::text)", "big", "(payload LIKE $1::text)", nil},
		{"(big.payload !~~* 'x'::text)", "big", "(payload NOT ILIKE $1::text)", nil},
		{"(lower(big.note) = 'x'::text)", "big", "(lower(note) = $1::text)", nil},
		{"(m.grp = s.id)", "m", "(grp = s.id)", []string{"grp"}},
		{"(b.a = b.c)", "b", "(a = c)", nil},
		{"((b.note = $1) AND (b.grp = 3))", "b", "((note = $1) AND (grp = $2))", []string{"note", "grp"}},
		{"(b.flag = true)", "b", "(flag = $1)", []string{"flag"}},
		{"((b.note)::text = 'x'::text)", "b", "((note)::text = $1::text)", []string{"note"}},
		{`(b."Weird Col" = 1)`, "b", `("Weird Col" = $1)`, []string{"Weird Col"}},
		{`("Odd"."x" = 1)`, "Odd", `("x" = $1)`, []string{"x"}},
		{`(bb.x = b.x)`, "b", `(bb.x = x)`, []string{"x"}},
		{"((b.note = 'a'::text) OR (b.note = 'b'::text))", "b", "((note = $1::text) OR (note = $2::text))", nil},
		{"(b.created > (now() - '1 day'::interval))", "b", "(created > (now() - $1::interval))", []string{"created"}},
		{"(b.x = $0)", "b", "(x = $0)", []string{"x"}},
		{"(hashed SubPlan 1)", "b", "(hashed SubPlan 1)", nil},
		{"((b.x = 1) AND (NOT (hashed SubPlan 12)))", "b", "((x = $1) AND (NOT (hashed SubPlan 12)))", []string{"x"}},
		{"(b.x = (SubPlan 2))", "b", "(x = (SubPlan 2))", nil},
		{"((alternatives: SubPlan 1 or hashed SubPlan 2) AND (b.y = 'z'::text))", "b", "((alternatives: SubPlan 1 or hashed SubPlan 2) AND (y = $1::text))", []string{"y"}},
		{"(b.x = 'it''s'::text)", "b", "(x = $1::text)", []string{"x"}},
		{"b.x ===", "b", "", nil},
	} {
		display, cols := analyzeFilter(c.filter, c.alias)
		if display != c.display || !reflect.DeepEqual(cols, c.cols) {
			t.Errorf("analyzeFilter(%q, %q) = %q, %q; want %q, %q", c.filter, c.alias, display, cols, c.display, c.cols)
		}
	}
}

func TestAbout(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0", 1: "1", 42: "42", 99.6: "100", 123: "120", 1993: "2,000", 17179.08: "17,000",
		1_234_567: "1,200,000", 2e6: "2,000,000", 45e9: "45,000,000,000",
	} {
		if got := about(in); got != want {
			t.Errorf("about(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestQuoteIdentIfNeeded(t *testing.T) {
	for in, want := range map[string]string{
		"orders": "orders", "order_items2": "order_items2", "Orders": `"Orders"`, "my table": `"my table"`,
		"2x": `"2x"`, `a"b`: `"a""b"`, "<13556>btree_big_note": `"<13556>btree_big_note"`,
	} {
		if got := quoteIdentIfNeeded(in); got != want {
			t.Errorf("quoteIdentIfNeeded(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckRead(t *testing.T) {
	for sql, params := range map[string]int{
		"SELECT 1":                             0,
		"SELECT 1;":                            0,
		"select * from t where a = $1":         1,
		"SELECT $3, $1":                        3,
		"VALUES ($1)":                          1,
		"TABLE t":                              0,
		"SELECT * FROM t FOR UPDATE":           0,
		"WITH x AS (SELECT 1) SELECT * FROM x": 0,
		"(SELECT 1) UNION (SELECT $2)":         2,
	} {
		st, err := checkRead(nil, sql)
		if err != nil || st.params != params || st.sql != sql {
			t.Errorf("checkRead(%q) = %+v, %v; want %d parameters", sql, st, err, params)
		}
	}
	for sql, kind := range map[string]error{
		"":                         ErrNotRead,
		"SELEC 1":                  ErrSyntax,
		"INSERT INTO t VALUES (1)": ErrNotRead,
		"SELECT 1; SELECT 2":       ErrNotRead,
		"SELECT * INTO u FROM t":   ErrNotRead,
		"WITH d AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM d":              ErrNotRead,
		"SELECT * FROM (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) s": ErrNotRead,
		"SET search_path = x":   ErrNotRead,
		"EXPLAIN SELECT 1":      ErrNotRead,
		"PREPARE p AS SELECT 1": ErrNotRead,
	} {
		if _, err := checkRead(nil, sql); !errors.Is(err, kind) {
			t.Errorf("checkRead(%q): %v, want %v", sql, err, kind)
		}
	}
}

func TestPlanErrorKinds(t *testing.T) {
	for code, kind := range map[string]error{
		"57014": ErrTimeout, "55P03": ErrTimeout, "42P01": ErrRelationMissing, "3F000": ErrRelationMissing,
		"42501": ErrPermissionDenied, "42601": ErrSyntax, "42703": ErrExplain, "25006": ErrExplain,
	} {
		err := planError(fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code, Message: "m"}))
		var pe *PlanError
		var pgErr *pgconn.PgError
		if !errors.Is(err, kind) || !errors.As(err, &pe) || pe.SQLState != code || !errors.As(err, &pgErr) {
			t.Errorf("SQLSTATE %s: %v, want kind %v", code, err, kind)
		}
		for _, other := range []error{ErrTimeout, ErrRelationMissing, ErrPermissionDenied, ErrSyntax, ErrExplain, ErrNotRead} {
			if other != kind && errors.Is(err, other) {
				t.Errorf("SQLSTATE %s also matches %v", code, other)
			}
		}
	}
	if err := planError(context.DeadlineExceeded); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
	if err := planError(context.Canceled); !errors.Is(err, ErrExplain) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if err := planError(errors.New("io")); !errors.Is(err, ErrExplain) || !strings.HasPrefix(err.Error(), "planner: explain failed: ") {
		t.Errorf("other: %v", err)
	}
}

func TestParallelDivisor(t *testing.T) {
	for workers, want := range map[int]float64{0: 1, 1: 1.7, 2: 2.4, 3: 3.1, 4: 4, 8: 8} {
		if got := parallelDivisor(workers); fmt.Sprintf("%.2f", got) != fmt.Sprintf("%.2f", want) {
			t.Errorf("parallelDivisor(%d) = %v, want %v", workers, got, want)
		}
	}
}

// plan builds EXPLAIN JSON from a node's JSON object.
func plan(t *testing.T, node string) *planNode {
	t.Helper()
	root, err := decodePlan([]byte(`[{"Plan": ` + node + `}]`))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestJudgeSyntheticPlans(t *testing.T) {
	facts := map[relKey]tableFacts{
		{"public", "big"}:   {rows: 2e6},
		{"public", "small"}: {rows: 500},
		{"public", "mid"}:   {rows: 10000},
		{"public", "fresh"}: {rows: -1},
	}
	seq := func(rel, extra string, rows float64) string {
		return fmt.Sprintf(`{"Node Type": "Seq Scan", "Relation Name": %q, "Schema": "public", "Alias": %q, "Startup Cost": 0, "Total Cost": 100, "Plan Rows": %g%s}`, rel, rel, rows, extra)
	}
	for _, c := range []struct {
		name, plan string
		check      string // "" for efficient
		reason     string
	}{
		{"parallel seq scan counts the table once",
			`{"Node Type": "Gather", "Workers Planned": 2, "Total Cost": 100, "Plan Rows": 2000, "Plans": [` +
				`{"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Parallel Aware": true, "Relation Name": "big", "Schema": "public", "Alias": "big", "Total Cost": 90, "Plan Rows": 833, "Filter": "(big.a = 1)"}]}`,
			PlanCheckSeqScan, "sequential scan of public.big, about 2,000,000 rows, filter on (a = $1)"},
		{"hash of a function's rows",
			`{"Node Type": "Hash Join", "Total Cost": 100, "Plan Rows": 10, "Plans": [` +
				`{"Node Type": "Function Scan", "Parent Relationship": "Outer", "Function Name": "f", "Total Cost": 50, "Plan Rows": 3000000},` +
				`{"Node Type": "Hash", "Parent Relationship": "Inner", "Total Cost": 50, "Plan Rows": 3000000, "Plans": [` +
				`{"Node Type": "Function Scan", "Parent Relationship": "Outer", "Function Name": "g", "Total Cost": 50, "Plan Rows": 3000000}]}]}`,
			PlanCheckHash, "hash table of about 3,000,000 rows from function g()"},
		{"hashed subplan runs once",
			seq("small", `, "Filter": "(hashed SubPlan 1)", "Plans": [`+
				`{"Node Type": "Seq Scan", "Parent Relationship": "SubPlan", "Subplan Name": "SubPlan 1", "Relation Name": "mid", "Schema": "public", "Alias": "mid", "Total Cost": 50, "Plan Rows": 10000}]`, 250),
			"", ""},
		{"correlated subplan runs per row read",
			seq("small", `, "Filter": "(SubPlan 1)", "Plans": [`+
				`{"Node Type": "Seq Scan", "Parent Relationship": "SubPlan", "Subplan Name": "SubPlan 1", "Relation Name": "mid", "Schema": "public", "Alias": "mid", "Total Cost": 50, "Plan Rows": 1}]`, 1),
			PlanCheckSeqScan, "sequential scan of public.mid, about 10,000 rows, repeated about 500 times: about 5,000,000 rows read"},
		{"subplan in the output runs per row returned",
			seq("small", `, "Output": ["(SubPlan 1)"], "Plans": [`+
				`{"Node Type": "Seq Scan", "Parent Relationship": "SubPlan", "Subplan Name": "SubPlan 1", "Relation Name": "mid", "Schema": "public", "Alias": "mid", "Total Cost": 50, "Plan Rows": 1}]`, 50),
			"", ""},
		{"materialize",
			`{"Node Type": "Nested Loop", "Total Cost": 100, "Plan Rows": 10, "Join Filter": "(a.x < b.y)", "Plans": [` +
				`{"Node Type": "Index Scan", "Parent Relationship": "Outer", "Relation Name": "small", "Schema": "public", "Alias": "small", "Index Name": "small_pkey", "Total Cost": 5, "Plan Rows": 1},` +
				`{"Node Type": "Materialize", "Parent Relationship": "Inner", "Total Cost": 50, "Plan Rows": 2000000, "Plans": [` +
				`{"Node Type": "Function Scan", "Parent Relationship": "Outer", "Function Name": "g", "Total Cost": 50, "Plan Rows": 2000000}]}]}`,
			PlanCheckNestedLoop, "nested loop joins about 1 row from public.small with about 2,000,000 rows from function g() each"},
		{"never analyzed table: the plan's rows",
			seq("fresh", "", 3000000), PlanCheckSeqScan, "sequential scan of public.fresh, about 3,000,000 rows, no filter"},
		{"never analyzed table, few rows",
			seq("fresh", `, "Filter": "(fresh.a = 1)"`, 10), "", ""},
		{"sort under a limit still reads its input",
			`{"Node Type": "Limit", "Startup Cost": 90, "Total Cost": 91, "Plan Rows": 10, "Plans": [` +
				`{"Node Type": "Sort", "Parent Relationship": "Outer", "Startup Cost": 90, "Total Cost": 100, "Plan Rows": 5000000, "Plans": [` +
				`{"Node Type": "Function Scan", "Parent Relationship": "Outer", "Function Name": "g", "Total Cost": 50, "Plan Rows": 5000000}]}]}`,
			PlanCheckSort, "sort of about 5,000,000 rows from function g()"},
		{"limit stops a scan",
			`{"Node Type": "Limit", "Startup Cost": 0, "Total Cost": 1, "Plan Rows": 10, "Plans": [` + seq("big", `, "Parent Relationship": "Outer"`, 2e6) + `]}`,
			"", ""},
		{"scan of a big table and a sort: the scan decides",
			`{"Node Type": "Sort", "Startup Cost": 90, "Total Cost": 200, "Plan Rows": 2000000, "Plans": [` + seq("big", `, "Parent Relationship": "Outer"`, 2e6) + `]}`,
			PlanCheckSeqScan, "sequential scan of public.big"},
		{"an EXISTS initplan reads up to its first row",
			`{"Node Type": "Result", "Startup Cost": 0.09, "Total Cost": 0.1, "Plan Rows": 1, "Output": ["$0"], "Plans": [` +
				`{"Node Type": "Seq Scan", "Parent Relationship": "InitPlan", "Subplan Name": "InitPlan 1 (returns $0)", "Relation Name": "big", "Schema": "public", "Alias": "big", "Total Cost": 44600, "Plan Rows": 500000, "Filter": "(big.a = 1)"}]}`,
			"", ""},
		{"an EXISTS initplan that may find no row reads the table",
			`{"Node Type": "Result", "Startup Cost": 0.09, "Total Cost": 0.1, "Plan Rows": 1, "Output": ["$0"], "Plans": [` +
				`{"Node Type": "Seq Scan", "Parent Relationship": "InitPlan", "Subplan Name": "InitPlan 1 (returns $0)", "Relation Name": "big", "Schema": "public", "Alias": "big", "Total Cost": 44600, "Plan Rows": 1, "Filter": "(big.a = 1)"}]}`,
			PlanCheckSeqScan, "sequential scan of public.big, about 2,000,000 rows, filter on (a = $1)"},
		{"a scalar initplan reads in full",
			`{"Node Type": "Result", "Startup Cost": 44600, "Total Cost": 44600, "Plan Rows": 1, "Output": ["$0"], "Plans": [` +
				`{"Node Type": "Aggregate", "Strategy": "Plain", "Parent Relationship": "InitPlan", "Subplan Name": "InitPlan 1 (returns $0)", "Total Cost": 44600, "Plan Rows": 1, "Output": ["count(*)"], "Plans": [` +
				seq("big", `, "Parent Relationship": "Outer"`, 2e6) + `]}]}`,
			PlanCheckSeqScan, "sequential scan of public.big, about 2,000,000 rows, no filter"},
		{"a CTE without output columns reads in full",
			`{"Node Type": "CTE Scan", "CTE Name": "x", "Total Cost": 100, "Plan Rows": 2000000, "Plans": [` +
				seq("big", `, "Parent Relationship": "InitPlan", "Subplan Name": "CTE x"`, 2e6) + `]}`,
			PlanCheckSeqScan, "sequential scan of public.big, about 2,000,000 rows, no filter"},
		{"big index scan",
			`{"Node Type": "Index Only Scan", "Relation Name": "big", "Schema": "public", "Alias": "big", "Index Name": "big_pkey", "Total Cost": 100, "Plan Rows": 2000000}`,
			PlanCheckIndexScan, "index only scan of public.big using big_pkey returns about 2,000,000 rows"},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := judgePlan(plan(t, c.plan), facts, DefaultThresholds)
			got, reason := "", ""
			if len(j.findings) > 0 {
				got, reason = j.findings[0].check, j.findings[0].reason
			}
			if got != c.check || !strings.Contains(reason, c.reason) {
				t.Errorf("check %q reason %q; want %q containing %q (findings %+v)", got, reason, c.check, c.reason, j.findings)
			}
		})
	}
}

func TestDecodePlanErrors(t *testing.T) {
	for _, doc := range []string{"", "{}", "[]", `[{"Plan": null}]`, `[{"Plan": {}}, {"Plan": {}}]`} {
		if _, err := decodePlan([]byte(doc)); err == nil {
			t.Errorf("decodePlan(%q): no error", doc)
		}
	}
}
