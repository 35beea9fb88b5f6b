package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pgproxy/pgproxy/userspace/analysis"
	"github.com/pgproxy/pgproxy/userspace/awsiam"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/llm"
	"github.com/pgproxy/pgproxy/userspace/reporter"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
)

// newModelTier builds the analysis's model tier from the LLM section on
// agent, or returns nil without one (no provider configured); wait makes
// every question wait for its answer (pgproxy analyze prints it).
func newModelTier(cfg *config.Config, log *slog.Logger, agent *llm.Agent, wait bool) *analysis.ModelTier {
	lc := cfg.LLM
	if agent == nil {
		return nil
	}
	provider := agent.Client.Provider
	tier := &analysis.ModelTier{
		Agent:   agent,
		Async:   lc.Async && !wait,
		Wait:    wait,
		Timeout: lc.Timeout, Band: lc.Band, CanAllow: lc.CanAllow, MaxInFlight: lc.MaxInFlight, Log: log,
	}
	mode := "async"
	if !lc.Async {
		mode = "sync"
	}
	log.Info("analysis: the model tier is on", "provider", provider.Name(), "model", provider.Model(), "mode", mode,
		"timeout", lc.Timeout.String(), "band", lc.Band, "can_allow", lc.CanAllow)
	return tier
}

// modelAgent is the agent the analysis and the masking share (one breaker,
// one set of metrics), or nil when no provider is configured.
func modelAgent(ctx context.Context, cfg *config.Config, log *slog.Logger, m *telemetry.Metrics) (*llm.Agent, error) {
	if cfg.LLM.Provider == "" {
		return nil, nil
	}
	return newAgent(ctx, cfg, log, m)
}

// newAgent is the tool loop on the configured provider (cfg.LLM.Provider
// must be set), with its retries, breaker and metrics (m may be nil).
func newAgent(ctx context.Context, cfg *config.Config, log *slog.Logger, m *telemetry.Metrics) (*llm.Agent, error) {
	lc := cfg.LLM
	pc := llm.Config{Provider: lc.Provider, Model: lc.Model,
		PortkeyBaseURL: lc.PortkeyBaseURL, PortkeyAPIKey: lc.PortkeyAPIKey, PortkeyVirtualKey: lc.PortkeyVirtualKey,
		AnthropicBaseURL: lc.AnthropicBaseURL, AnthropicAPIKey: lc.AnthropicAPIKey,
		OpenAIBaseURL: lc.OpenAIBaseURL, OpenAIAPIKey: lc.OpenAIAPIKey}
	if lc.Provider == "bedrock" {
		awsCfg, err := awsiam.Config(ctx, awsiam.Identity{Region: lc.BedrockRegion})
		if err != nil {
			return nil, fmt.Errorf("BEDROCK_REGION: %w", err)
		}
		pc.AWS = awsCfg
	}
	provider, err := llm.NewProvider(pc)
	if err != nil {
		return nil, fmt.Errorf("LLM_PROVIDER: %w", err)
	}
	client := &llm.Client{Provider: provider, Retries: lc.Retries,
		Breaker: &llm.Breaker{Threshold: lc.BreakerFailures, Pause: lc.BreakerPause}, Log: log}
	if m != nil {
		m.LLM.Provider(provider.Name())
		client.Observer = m.LLM
	}
	return &llm.Agent{Client: client, MaxSteps: lc.MaxSteps, MaxTokens: int64(lc.MaxTokens), TokenBudget: int64(lc.TokenBudget)}, nil
}

// modelAnswers is the model tier's OnAnswer: metrics, a log line, and for
// an answer that arrived in the background, the update of the statement's
// query_issues rows and an llm_answer row in query_metrics (rep may be nil).
func modelAnswers(log *slog.Logger, m *telemetry.Metrics, rep func() *reporter.Reporter, mode string) func(analysis.ModelAnswer) {
	return func(a analysis.ModelAnswer) {
		outcome := "failed"
		switch {
		case a.Err != nil:
		case a.After.Source != analysis.SourceLLM:
			outcome = "not_trusted"
		case a.After.Verdict != a.Before.Verdict || a.Before.Verdict == analysis.Efficient:
			outcome = "decided"
		default:
			outcome = "explained"
		}
		if m != nil {
			m.LLM.Answers.WithLabelValues(outcome).Inc()
		}
		if a.Err != nil {
			return
		}
		log.Info("the model answered", "outcome", outcome, "database", a.Database, "fingerprint", a.Fingerprint,
			"verdict", string(a.After.Verdict), "before", string(a.Before.Verdict)+"/"+string(a.Before.Origin),
			"took_ms", a.Took.Milliseconds())
		r := rep()
		if r == nil || a.Waited {
			return // a statement that waited carries the model's time in its own row
		}
		d := a.After
		r.Explain(reporter.Explanation{Fingerprint: a.Fingerprint, Database: a.Database,
			Since: a.Before.Decided.Add(-time.Second), Verdict: string(d.Verdict), Reason: d.Reason,
			Suggestion: d.Suggestion, Evidence: d.Evidence, Source: string(d.Source), Model: d.Model})
		r.Metric(reporter.Metric{Fingerprint: a.Fingerprint, Database: a.Database, Mode: mode, Action: "llm_answer",
			Verdict: string(d.Verdict), DecisionSource: string(d.Source), Analysis: a.Took, Total: a.Took, LLM: a.Took})
	}
}
