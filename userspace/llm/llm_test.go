package llm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/awsiam"
	"github.com/pgproxy/pgproxy/userspace/llm"
)

// providers starts the stand-in and returns a provider of each kind
// pointed at it; Bedrock finds it through AWS_ENDPOINT_URL_BEDROCK_RUNTIME
// and signs with the stand-in account's key from the default chain.
func providers(t *testing.T) (*harness.ModelServer, map[string]llm.Provider) {
	t.Helper()
	account := harness.NewAWSAccount("eu-west-1")
	srv := harness.StartModelServer(t, account)
	for k, v := range account.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", srv.URL)
	awsCfg, err := awsiam.Config(context.Background(), awsiam.Identity{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]llm.Provider{}
	for _, cfg := range []llm.Config{
		{Provider: "portkey", PortkeyBaseURL: srv.URL + "/v1", PortkeyAPIKey: srv.PortkeyKey, PortkeyVirtualKey: srv.PortkeyVirtualKey},
		{Provider: "openai", OpenAIBaseURL: srv.URL + "/v1", OpenAIAPIKey: srv.OpenAIKey, Model: "local-model"},
		{Provider: "anthropic", AnthropicBaseURL: srv.URL, AnthropicAPIKey: srv.AnthropicKey},
		{Provider: "bedrock", AWS: awsCfg},
	} {
		p, err := llm.NewProvider(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out[cfg.Provider] = p
	}
	return srv, out
}

var answerTool = llm.Tool{Name: "answer", Description: "the verdict", Schema: map[string]any{
	"type": "object",
	"properties": map[string]any{
		"verdict": map[string]any{"type": "string", "enum": []string{"efficient", "inefficient"}},
		"reason":  map[string]any{"type": "string"},
	},
	"required": []string{"verdict", "reason"},
}}

func validate(raw json.RawMessage) error {
	var a struct{ Verdict, Reason string }
	if err := json.Unmarshal(raw, &a); err != nil {
		return err
	}
	if a.Verdict != "efficient" && a.Verdict != "inefficient" {
		return errors.New("verdict must be efficient or inefficient")
	}
	if a.Reason == "" {
		return errors.New("reason is empty")
	}
	return nil
}

func task(facts func(context.Context, json.RawMessage) (string, error)) llm.Task {
	return llm.Task{
		System: "You judge SQL statements.",
		Prompt: "Judge: SELECT * FROM orders WHERE note = $1",
		Tools: []llm.Tool{{Name: "table_facts", Description: "facts about a table", Schema: map[string]any{
			"type": "object", "properties": map[string]any{"table": map[string]any{"type": "string"}}, "required": []string{"table"},
		}}},
		Funcs:    map[string]llm.ToolFunc{"table_facts": facts},
		Answer:   answerTool,
		Validate: validate,
	}
}

// TestToolLoop runs the same two-step conversation (a tool call, then the
// answer) through every provider's wire format.
func TestToolLoop(t *testing.T) {
	srv, ps := providers(t)
	srv.Answer(func(c harness.ModelCall) harness.ModelReply {
		if c.Turns == 0 {
			return harness.ModelReply{Tool: "table_facts", Input: map[string]any{"table": "orders"}}
		}
		if !strings.Contains(c.Text, "rows=2000000") {
			return harness.ModelReply{Tool: "answer", Input: map[string]any{"verdict": "efficient", "reason": "no facts seen"}}
		}
		return harness.ModelReply{Tool: "answer", Input: map[string]any{"verdict": "inefficient", "reason": "orders has 2,000,000 rows"}}
	})
	for _, name := range []string{"portkey", "openai", "anthropic", "bedrock"} {
		t.Run(name, func(t *testing.T) {
			srv.Reset()
			var asked []string
			agent := &llm.Agent{Client: &llm.Client{Provider: ps[name]}}
			got, use, err := agent.Run(context.Background(), task(func(_ context.Context, in json.RawMessage) (string, error) {
				var a struct{ Table string }
				_ = json.Unmarshal(in, &a)
				asked = append(asked, a.Table)
				return "table public.orders: rows=2000000", nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(got), `"inefficient"`) || use.Requests != 2 {
				t.Fatalf("answer %s after %d requests, want inefficient after 2", got, use.Requests)
			}
			if len(asked) != 1 || asked[0] != "orders" {
				t.Fatalf("tool asked for %v", asked)
			}
			if use.InputTokens <= 0 || use.OutputTokens <= 0 {
				t.Fatalf("usage %+v", use)
			}
			calls := srv.Calls()
			if len(calls) != 2 {
				t.Fatalf("%d requests", len(calls))
			}
			c := calls[1]
			if c.API != name {
				t.Fatalf("API %s, want %s", c.API, name)
			}
			if c.System != "You judge SQL statements." || !strings.Contains(c.Text, "Judge: SELECT") {
				t.Fatalf("system %q text %q", c.System, c.Text)
			}
			if c.Temperature == nil || *c.Temperature != 0 {
				t.Fatalf("temperature %v, want 0", c.Temperature)
			}
			if strings.Join(c.Tools, ",") != "table_facts,answer" {
				t.Fatalf("tools %v", c.Tools)
			}
			wantModel := map[string]string{"portkey": llm.DefaultBedrockModel, "openai": "local-model",
				"anthropic": llm.DefaultAnthropicModel, "bedrock": llm.DefaultBedrockModel}[name]
			if c.Model != wantModel {
				t.Fatalf("model %q, want %q", c.Model, wantModel)
			}
			if name == "portkey" && c.Header.Get("Authorization") != "" {
				t.Fatalf("Portkey got an Authorization header %q", c.Header.Get("Authorization"))
			}
		})
	}
}

// recorder is an Observer that keeps what it saw.
type recorder struct {
	mu      sync.Mutex
	results []string
	tokens  int64
	open    []bool
}

func (r *recorder) Request(_, result string, _ float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, result)
}

func (r *recorder) TokensUsed(_, _ string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens += n
}

func (r *recorder) BreakerOpen(_ string, open bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open = append(r.open, open)
}

func ok(harness.ModelCall) harness.ModelReply {
	return harness.ModelReply{Tool: "answer", Input: map[string]any{"verdict": "efficient", "reason": "an index lookup"}}
}

// TestRetriesAndBreaker: throttling and server errors are retried; a
// provider that keeps failing opens the breaker (logged once, nothing sent
// while open); after the pause one probe closes it again.
func TestRetriesAndBreaker(t *testing.T) {
	srv, ps := providers(t)
	srv.Answer(ok)
	for _, name := range []string{"portkey", "anthropic", "bedrock", "openai"} {
		t.Run(name, func(t *testing.T) {
			srv.Reset()
			var logs bytes.Buffer
			rec := &recorder{}
			client := &llm.Client{Provider: ps[name], Retries: 2, Backoff: time.Millisecond,
				Breaker: &llm.Breaker{Threshold: 2, Pause: 200 * time.Millisecond}, Observer: rec,
				Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			req := llm.Request{Messages: []llm.Message{{Role: llm.User, Text: "hi"}}, Tools: []llm.Tool{answerTool}}

			srv.Fail(harness.ModelReply{Status: 429}, harness.ModelReply{Status: 500})
			if _, err := client.Complete(context.Background(), req); err != nil {
				t.Fatalf("after a 429 and a 500: %v", err)
			}
			if got := strings.Join(rec.results, ","); got != "throttled,server_error,ok" {
				t.Fatalf("results %s", got)
			}

			// Two requests failing every attempt open the breaker.
			for i := 0; i < 6; i++ {
				srv.Fail(harness.ModelReply{Status: 503})
			}
			for i := 0; i < 2; i++ {
				_, err := client.Complete(context.Background(), req)
				var e *llm.Error
				if !errors.As(err, &e) || e.Status != 503 {
					t.Fatalf("failing request %d: %v", i, err)
				}
			}
			n := len(srv.Calls())
			if _, err := client.Complete(context.Background(), req); !errors.Is(err, llm.ErrBreakerOpen) {
				t.Fatalf("with the breaker open: %v", err)
			}
			if len(srv.Calls()) != n {
				t.Fatal("a request was sent with the breaker open")
			}
			time.Sleep(250 * time.Millisecond)
			if _, err := client.Complete(context.Background(), req); err != nil {
				t.Fatalf("the probe after the pause: %v", err)
			}
			if client.Breaker.Open() {
				t.Fatal("the breaker stayed open after a good probe")
			}
			if got := strings.Count(logs.String(), "keeps failing"); got != 1 {
				t.Fatalf("%d breaker-open log lines, want 1:\n%s", got, logs.String())
			}
			if !strings.Contains(logs.String(), "answers again") {
				t.Fatalf("no recovery line:\n%s", logs.String())
			}
			if len(rec.open) != 2 || !rec.open[0] || rec.open[1] {
				t.Fatalf("breaker gauge changes %v, want open then closed", rec.open)
			}
			for _, secret := range []string{srv.OpenAIKey, srv.AnthropicKey, srv.PortkeyKey, srv.PortkeyVirtualKey, srv.URL} {
				if strings.Contains(logs.String(), secret) {
					t.Fatalf("the log holds a secret or the URL %q:\n%s", secret, logs.String())
				}
			}
		})
	}
}

// TestFailures: a slow provider ends at the caller's time limit; a
// malformed body and a refused key are errors that name the provider and
// the status only.
func TestFailures(t *testing.T) {
	srv, ps := providers(t)
	srv.Answer(ok)
	req := llm.Request{Messages: []llm.Message{{Role: llm.User, Text: "hi"}}, Tools: []llm.Tool{answerTool}}
	for _, name := range []string{"portkey", "anthropic", "bedrock", "openai"} {
		t.Run(name, func(t *testing.T) {
			client := &llm.Client{Provider: ps[name]}
			srv.Fail(harness.ModelReply{Delay: 5 * time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			start := time.Now()
			_, err := client.Complete(ctx, req)
			cancel()
			var e *llm.Error
			if !errors.As(err, &e) || e.Kind != "timeout" || time.Since(start) > 2*time.Second {
				t.Fatalf("slow provider: %v after %s", err, time.Since(start))
			}
			srv.Reset()

			// The zero value retries nothing: a 500 is one request, one error.
			srv.Fail(harness.ModelReply{Status: 500})
			if _, err := client.Complete(context.Background(), req); err == nil {
				t.Fatal("a 500 with no retries was not an error")
			}
			if n := len(srv.Calls()); n != 1 {
				t.Fatalf("Retries 0: %d requests for one failure, want 1", n)
			}
			srv.Reset()

			srv.Fail(harness.ModelReply{Malformed: true})
			if _, err := client.Complete(context.Background(), req); err == nil {
				t.Fatal("a malformed body was accepted")
			} else if strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("the error names the URL: %v", err)
			}
		})
	}
	bad, err := llm.NewProvider(llm.Config{Provider: "anthropic", AnthropicBaseURL: srv.URL, AnthropicAPIKey: "sk-ant-wrong-key"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&llm.Client{Provider: bad}).Complete(context.Background(), req)
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Retryable() {
		t.Fatalf("wrong key: %v", err)
	}
	if s := err.Error(); strings.Contains(s, "sk-ant-wrong-key") || strings.Contains(s, srv.URL) || strings.Contains(s, "127.0.0.1") {
		t.Fatalf("the error holds the key or the URL: %s", s)
	}
}

// TestInvalidAnswer: an answer Validate refuses is sent back once with the
// reason; a second invalid answer ends the run.
func TestInvalidAnswer(t *testing.T) {
	srv, ps := providers(t)
	bad := harness.ModelReply{Tool: "answer", Input: map[string]any{"verdict": "approve", "reason": "x"}}
	srv.Answer(func(c harness.ModelCall) harness.ModelReply {
		if c.Turns == 1 && strings.Contains(c.Text, "invalid answer: verdict must be") {
			return ok(c)
		}
		return bad
	})
	agent := &llm.Agent{Client: &llm.Client{Provider: ps["anthropic"]}}
	got, _, err := agent.Run(context.Background(), task(nil))
	if err != nil || !strings.Contains(string(got), "efficient") {
		t.Fatalf("after one invalid answer: %s %v", got, err)
	}
	srv.Answer(func(harness.ModelCall) harness.ModelReply { return bad })
	if _, _, err := agent.Run(context.Background(), task(nil)); !errors.Is(err, llm.ErrNoAnswer) {
		t.Fatalf("two invalid answers: %v", err)
	}
	srv.Answer(func(harness.ModelCall) harness.ModelReply {
		return harness.ModelReply{Tool: "table_facts", Input: map[string]any{"table": "t"}}
	})
	agent.MaxSteps = 3
	_, use, err := agent.Run(context.Background(), task(func(context.Context, json.RawMessage) (string, error) { return "rows=1", nil }))
	if !errors.Is(err, llm.ErrNoAnswer) || use.Requests != 3 {
		t.Fatalf("a model that never answers: %v after %d requests", err, use.Requests)
	}
}
