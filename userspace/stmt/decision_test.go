package stmt

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

type hook struct{}

func (hook) Columns([]pgproto3.FieldDescription) RowFunc { return nil }

func TestChainRewriteIsSeenByLaterPoliciesAndParsedOnce(t *testing.T) {
	parser := sqlparse.NewParser(16)
	var seen []string
	var trees []*sqlparse.Parsed
	rewrite := PolicyFunc(func(_ context.Context, st *Statement) Decision {
		trees = append(trees, st.Parsed())
		return Decision{Action: Rewrite, SQL: "SELECT 2", Source: "rewriter"}
	})
	look := PolicyFunc(func(_ context.Context, st *Statement) Decision {
		seen = append(seen, st.SQL)
		trees = append(trees, st.Parsed(), st.Parsed())
		return Decision{Results: hook{}}
	})
	var st Statement
	st.Reset(Simple, "", "", "SELECT 1", nil, &Facts{}, parser)
	out := Chain{rewrite, look}.Decide(context.Background(), &st)
	if out.Action != Rewrite || !out.Rewritten || out.SQL != "SELECT 2" || out.Source != "rewriter" || len(out.Hooks) != 1 {
		t.Fatalf("outcome %+v", out)
	}
	if len(seen) != 1 || seen[0] != "SELECT 2" {
		t.Fatalf("later policy saw %v, want the rewritten text", seen)
	}
	if trees[1] != trees[2] || trees[1].SQL() != "SELECT 2" || trees[0].SQL() != "SELECT 1" {
		t.Fatal("one parse per text and policy chain expected")
	}
	if st.Fingerprint() == "" || st.Fingerprint() != parser.Parse("SELECT 7").Fingerprint() {
		t.Fatal("fingerprint must ignore constants")
	}
}

func TestChainRefusalStopsAndRouteWins(t *testing.T) {
	called := false
	refuse := PolicyFunc(func(context.Context, *Statement) Decision {
		return Decision{Action: Refuse, Err: wire.Refusal(wire.CodeInsufficientPrivilege, "no"), Source: "guard"}
	})
	after := PolicyFunc(func(context.Context, *Statement) Decision { called = true; return Decision{} })
	var st Statement
	st.Reset(Simple, "", "", "SELECT 1", nil, &Facts{}, nil)
	out := Chain{refuse, after}.Decide(context.Background(), &st)
	if out.Action != Refuse || out.Err.Message != "no" || out.Source != "guard" || called {
		t.Fatalf("outcome %+v, later policy called: %v", out, called)
	}

	route := PolicyFunc(func(context.Context, *Statement) Decision {
		return Decision{Action: Route, Leg: "shunt", Source: "planner", Verdict: "inefficient"}
	})
	note := PolicyFunc(func(context.Context, *Statement) Decision { return Decision{Source: "rules", Verdict: "ok"} })
	out = Chain{route, note}.Decide(context.Background(), &st)
	if out.Action != Route || out.Leg != "shunt" || out.Source != "planner" || out.Verdict != "inefficient" {
		t.Fatalf("outcome %+v: a route outranks a later plain note", out)
	}

	bare := PolicyFunc(func(context.Context, *Statement) Decision { return Decision{Action: Refuse} })
	if out := (Chain{bare}).Decide(context.Background(), &st); out.Err == nil || out.Err.Code != wire.CodeInsufficientPrivilege {
		t.Fatalf("a refusal without an error must still carry one: %+v", out)
	}
}

func TestChainBindCannotRewrite(t *testing.T) {
	var st Statement
	st.Reset(Bind, "s1", "", "SELECT 1", nil, &Facts{}, nil)
	out := Chain{PolicyFunc(func(context.Context, *Statement) Decision { return Decision{Action: Rewrite, SQL: "SELECT 2"} })}.Decide(context.Background(), &st)
	if out.Rewritten || out.SQL != "SELECT 1" {
		t.Fatalf("a Bind's statement text changed: %+v", out)
	}
}
