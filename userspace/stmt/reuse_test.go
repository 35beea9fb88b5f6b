package stmt

import (
	"context"
	"testing"
	"time"
)

// reuser is a policy that counts its decisions and reuses.
type reuser struct {
	epoch   uint64
	d       Decision
	decided int
	reused  []Decision
	// keep is what Reusable answers (nil: yes).
	keep func(*Statement, Decision) bool
}

func (r *reuser) Reusable(st *Statement, d Decision) bool { return r.keep == nil || r.keep(st, d) }

func (r *reuser) Decide(context.Context, *Statement) Decision { r.decided++; return r.d }
func (r *reuser) Epoch() uint64                               { return r.epoch }
func (r *reuser) Reused(_ *Statement, d Decision) Decision {
	r.reused = append(r.reused, d)
	d.Source = "memory"
	return d
}

func bind() *Statement {
	var st Statement
	st.Reset(Bind, "s", "", "SELECT 1", nil, &Facts{}, nil)
	return &st
}

func TestDecideReusingGivesAllowAgainWithinTheEpochAndASecond(t *testing.T) {
	a := &reuser{d: Decision{Source: "guard"}}
	b := &reuser{d: Decision{Source: "rules", Verdict: "efficient"}}
	c := Chain{a, b}
	var m Memo
	now := time.Unix(1000, 0)
	out := c.DecideReusing(context.Background(), bind(), &m, now)
	if out.Action != Allow || out.Source != "rules" || a.decided != 1 || b.decided != 1 {
		t.Fatalf("first Bind: %+v, decided %d %d", out, a.decided, b.decided)
	}
	out = c.DecideReusing(context.Background(), bind(), &m, now.Add(MaxReuse-time.Millisecond))
	if a.decided != 1 || b.decided != 1 || len(a.reused) != 1 || len(b.reused) != 1 {
		t.Fatalf("second Bind asked again: decided %d %d, reused %d %d", a.decided, b.decided, len(a.reused), len(b.reused))
	}
	if out.Action != Allow || out.Source != "memory" || out.Verdict != "efficient" || out.Elapsed != 0 {
		t.Fatalf("reused outcome %+v", out)
	}
	if b.reused[0].Source != "rules" {
		t.Fatalf("Reused got %+v, want the policy's own decision", b.reused[0])
	}
	// A second later the policies are asked again.
	c.DecideReusing(context.Background(), bind(), &m, now.Add(MaxReuse))
	if a.decided != 2 || b.decided != 2 {
		t.Fatalf("after MaxReuse: decided %d %d, want 2 2", a.decided, b.decided)
	}
	// An epoch change (an override reload, say) is seen at the next Bind.
	b.epoch++
	b.d = Decision{Action: Refuse, Source: "override", Verdict: "inefficient"}
	out = c.DecideReusing(context.Background(), bind(), &m, now.Add(MaxReuse+time.Millisecond))
	if out.Action != Refuse || b.decided != 3 {
		t.Fatalf("after an epoch change: %+v, decided %d", out, b.decided)
	}
	// A clock that went back is not trusted either.
	b.d = Decision{}
	c.DecideReusing(context.Background(), bind(), &m, now)
	c.DecideReusing(context.Background(), bind(), &m, now.Add(-time.Millisecond))
	if b.decided != 5 {
		t.Fatalf("clock went back: decided %d, want 5", b.decided)
	}
}

func TestDecideReusingNeverReusesRefusalsRoutesHooksOrNonReusers(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, d := range []Decision{
		{Action: Refuse, Source: "rules"},
		{Action: Route, Leg: "shunt"},
		{Results: hook{}},
	} {
		r := &reuser{d: d}
		var m Memo
		for i := range 3 {
			c := Chain{r}
			c.DecideReusing(context.Background(), bind(), &m, now.Add(time.Duration(i)*time.Millisecond))
		}
		if r.decided != 3 || len(r.reused) != 0 {
			t.Errorf("%+v: decided %d, reused %d; want every Bind decided", d, r.decided, len(r.reused))
		}
	}
	asked := 0
	plain := PolicyFunc(func(context.Context, *Statement) Decision { asked++; return Decision{} })
	r := &reuser{}
	var m Memo
	for range 3 {
		Chain{r, plain}.DecideReusing(context.Background(), bind(), &m, now)
	}
	if asked != 3 || r.decided != 3 {
		t.Errorf("a chain with a policy that does not reuse: asked %d, decided %d; want 3 3", asked, r.decided)
	}
}

func query(sql string) *Statement {
	var st Statement
	st.Reset(Simple, "", "", sql, nil, &Facts{}, nil)
	return &st
}

func TestDecideReusingByShapeOnlyWhatEveryPolicyCallsReusable(t *testing.T) {
	now := time.Unix(1000, 0)
	a := &reuser{}
	b := &reuser{d: Decision{Source: "rules", Verdict: "efficient"}, keep: func(st *Statement, _ Decision) bool {
		return st.SQL != "SELECT * FROM t LIMIT 5" // as if the decision read the constant
	}}
	c := Chain{a, b}
	var m Memo
	c.DecideReusing(context.Background(), query("SELECT * FROM t WHERE id = 1"), &m, now)
	out := c.DecideReusing(context.Background(), query("SELECT * FROM t WHERE id = 2"), &m, now.Add(time.Millisecond))
	if a.decided != 1 || b.decided != 1 || out.Source != "memory" {
		t.Fatalf("a text of the same shape: decided %d %d, outcome %+v; want reused", a.decided, b.decided, out)
	}
	var m2 Memo
	for i := range 3 {
		c.DecideReusing(context.Background(), query("SELECT * FROM t LIMIT 5"), &m2, now.Add(time.Duration(i)*time.Millisecond))
	}
	if b.decided != 4 {
		t.Fatalf("a decision one policy does not call reusable: decided %d, want 4", b.decided)
	}
	// The statement given to Reused is the new one (its counts and records are its own).
	if got := b.reused[0]; got.Source != "rules" {
		t.Fatalf("Reused got %+v", got)
	}
}

// TestReuseOnlyGivesAgain checks Reuse: false and no policy asked while
// nothing is memoised or the memo is stale; the memo's outcome once it
// holds one.
func TestReuseOnlyGivesAgain(t *testing.T) {
	a := &reuser{d: Decision{Source: "rules", Verdict: "efficient"}}
	c := Chain{a}
	var m Memo
	now := time.Unix(1000, 0)
	if _, ok := c.Reuse(bind(), &m, now); ok || a.decided != 0 {
		t.Fatalf("empty memo: reused %v, decided %d", ok, a.decided)
	}
	c.DecideReusing(context.Background(), bind(), &m, now)
	out, ok := c.Reuse(bind(), &m, now.Add(time.Millisecond))
	if !ok || out.Action != Allow || out.Source != "memory" || out.Verdict != "efficient" || a.decided != 1 || len(a.reused) != 1 {
		t.Fatalf("memoised: reused %v, %+v, decided %d, reused %d", ok, out, a.decided, len(a.reused))
	}
	a.epoch++
	if _, ok := c.Reuse(bind(), &m, now.Add(time.Millisecond)); ok || a.decided != 1 {
		t.Fatalf("after an epoch change: reused %v, decided %d", ok, a.decided)
	}
	if _, ok := c.Reuse(bind(), &m, now.Add(MaxReuse)); ok {
		t.Fatal("reused after MaxReuse")
	}
}
