package analysis

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgproxy/pgproxy/userspace/llm"
)

func testTier(t *testing.T, canAllow bool) *ModelTier {
	p, err := llm.NewProvider(llm.Config{Provider: "openai", OpenAIBaseURL: "http://127.0.0.1:9/v1", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	m := &ModelTier{Agent: &llm.Agent{Client: &llm.Client{Provider: p}}, CanAllow: canAllow}
	m.init()
	return m
}

// TestModelNeed: which decisions of tiers 1–2 go to the model, and which
// of them wait in sync mode (borderline).
func TestModelNeed(t *testing.T) {
	m := testTier(t, false)
	cases := []struct {
		d               Decision
		ask, borderline bool
	}{
		{Decision{Verdict: Efficient, Origin: SourcePlanner, Source: SourcePlanner, Score: 0.1}, false, false},
		{Decision{Verdict: Efficient, Origin: SourcePlanner, Source: SourcePlanner, Score: 0.25}, true, true},
		{Decision{Verdict: Efficient, Origin: SourcePlanner, Source: SourcePlanner, Score: 0.9}, true, true},
		{Decision{Verdict: Inefficient, Origin: SourcePlanner, Source: SourcePlanner, Score: 1.5}, true, true},
		{Decision{Verdict: Inefficient, Origin: SourcePlanner, Source: SourcePlanner, Score: 4}, true, false},
		{Decision{Verdict: Inefficient, Origin: SourceRules, Source: SourceRules}, true, false},
		{Decision{Verdict: Inefficient, Origin: SourceFallback, Source: SourceFallback}, false, false},
		{Decision{Verdict: Inefficient, Origin: SourceOverride, Source: SourceOverride}, false, false},
	}
	for _, c := range cases {
		ask, borderline := m.need(c.d)
		if ask != c.ask || borderline != c.borderline {
			t.Errorf("%+v: ask %v borderline %v, want %v %v", c.d, ask, borderline, c.ask, c.borderline)
		}
	}
}

// TestModelCombine: the model's answer joins the decision; its efficient
// does not override an inefficient one unless CanAllow.
func TestModelCombine(t *testing.T) {
	planner := Decision{Verdict: Inefficient, Origin: SourcePlanner, Source: SourcePlanner, Check: PlanCheckSeqScan,
		Reason: "sequential scan of public.t", Evidence: "Seq Scan on t", Suggestion: "an index on t (a)", Score: 2}
	d := testTier(t, false).combine(planner, answer{Verdict: "efficient", Reason: "fine"})
	if d.Verdict != Inefficient || d.Source != SourcePlanner || d.Reason != planner.Reason || !strings.Contains(d.Evidence, "not trusted") || d.Model != "openai/m" {
		t.Errorf("not trusted: %+v", d)
	}
	d = testTier(t, true).combine(planner, answer{Verdict: "efficient", Reason: "fine"})
	if d.Verdict != Efficient || d.Source != SourceLLM || d.Check != "" || d.Suggestion != "" {
		t.Errorf("allowed: %+v", d)
	}
	d = testTier(t, false).combine(planner, answer{Verdict: "inefficient", Reason: "scans t for a", Suggestion: ""})
	if d.Verdict != Inefficient || d.Source != SourceLLM || d.Origin != SourceLLM || d.Reason != "scans t for a" ||
		d.Suggestion != planner.Suggestion || d.Check != PlanCheckSeqScan || !strings.HasPrefix(d.Evidence, "planner said: inefficient, sequential scan") {
		t.Errorf("explained: %+v", d)
	}
	eff := Decision{Verdict: Efficient, Origin: SourcePlanner, Source: SourcePlanner, Reason: "small", Score: 0.5}
	d = testTier(t, false).combine(eff, answer{Verdict: "inefficient", Reason: "reads half the limit per call"})
	if d.Verdict != Inefficient || d.Check != "llm" || d.Source != SourceLLM {
		t.Errorf("decided: %+v", d)
	}
}

func TestValidateAnswer(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`{"verdict":"efficient","reason":"an index lookup"}`, true},
		{`{"verdict":"inefficient","reason":"x","suggestion":"add an index"}`, true},
		{`{"verdict":"approve","reason":"x"}`, false},
		{`{"verdict":"efficient","reason":" "}`, false},
		{`{"verdict":"efficient","reason":"a\u0007b"}`, false},
		{`{"verdict":"efficient","reason":"` + strings.Repeat("x", 700) + `"}`, false},
		{`[1]`, false},
	} {
		err := validateAnswer(json.RawMessage(c.in))
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.in, err)
		}
	}
}
