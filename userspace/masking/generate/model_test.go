package generate

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/llm"
)

func TestShape(t *testing.T) {
	for in, want := range map[string]string{
		"123-45-6789":           "ddd-dd-dddd",
		"MR0012345":             "AAddddddd",
		"Ana María":             "Aaa Aaaaa",
		"a@b.io":                "a@a.aa",
		strings.Repeat("x", 50): strings.Repeat("a", 40) + "…",
	} {
		if got := Shape(in); got != want {
			t.Errorf("Shape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestModelColumn: a low finding goes to the model with the shapes of its
// values (their values only with Samples); a sensitive answer masks it
// with medium confidence and the model in the evidence.
func TestModelColumn(t *testing.T) {
	srv := harness.StartModelServer(t, nil)
	srv.Answer(func(c harness.ModelCall) harness.ModelReply {
		return harness.ModelReply{Tool: "classify", Input: map[string]any{"sensitive": true, "kind": "passport", "reason": "a passport-like reference"}}
	})
	p, err := llm.NewProvider(llm.Config{Provider: "openai", OpenAIBaseURL: srv.URL + "/v1", OpenAIAPIKey: srv.OpenAIKey, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for i := 1; i <= 50; i++ {
		values = append(values, fmt.Sprintf("MR%07d", i*7919))
	}
	col := Column{Name: "member_ref", Type: "text", Category: "S", BaseType: "text"}
	low := Classify(col, values, false)
	if low.Confidence != Low {
		t.Fatalf("the detectors decided: %+v", low)
	}
	table := &Table{Schema: "public", Name: "members"}
	for _, samples := range []bool{false, true} {
		srv.Reset()
		m := &Model{Agent: &llm.Agent{Client: &llm.Client{Provider: p}}, Samples: samples}
		f := m.consider(context.Background(), table, []string{"id", "member_ref"}, low, values, false)
		if f.Confidence != Medium || f.Kind != KindPassport || !f.Masked() || !strings.Contains(f.Evidence(), "model openai/m: a passport-like reference") {
			t.Fatalf("samples=%v: %+v (evidence %s)", samples, f, f.Evidence())
		}
		calls := srv.Calls()
		if len(calls) != 1 || !strings.Contains(calls[0].Text, `"shape": "AAddddddd"`) || !strings.Contains(calls[0].Text, "public.members") {
			t.Fatalf("samples=%v: the model was shown %v", samples, calls)
		}
		if shown := strings.Contains(calls[0].Text, values[0]); shown != samples {
			t.Fatalf("samples=%v: a value was shown: %v", samples, shown)
		}
	}
	// A column of a kind its type cannot hold stays low; a high finding is not asked.
	srv.Reset()
	m := &Model{Agent: &llm.Agent{Client: &llm.Client{Provider: p}}}
	high := Finding{Column: col, Confidence: High, Kind: KindEmail}
	if f := m.consider(context.Background(), table, nil, high, values, false); f.Confidence != High || len(srv.Calls()) != 0 {
		t.Fatalf("a decided column went to the model: %+v", f)
	}
}
