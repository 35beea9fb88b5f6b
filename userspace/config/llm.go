package config

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// LLM is the model tier's section (LLM_*, ANALYSIS_LLM_*, the providers'
// own variables). Provider is "" when no provider is configured or
// ANALYSIS_LLM_MODE=off: then the analysis has no model tier.
type LLM struct {
	Provider string // portkey, bedrock, anthropic, openai
	Model    string // LLM_MODEL, or BEDROCK_MODEL_ID for bedrock (and portkey without LLM_MODEL)

	PortkeyBaseURL, PortkeyAPIKey, PortkeyVirtualKey string
	BedrockRegion                                    string
	AnthropicBaseURL, AnthropicAPIKey                string
	OpenAIBaseURL, OpenAIAPIKey                      string

	Async           bool // ANALYSIS_LLM_MODE=async (sync: false)
	Timeout         time.Duration
	Band            float64
	CanAllow        bool
	MaxSteps        int
	MaxTokens       int
	TokenBudget     int
	Retries         int
	BreakerFailures int
	BreakerPause    time.Duration
	MaxInFlight     int
}

// loadLLM parses the model tier's section. It names the provider: the
// LLM_PROVIDER one, or the first whose variables are set (Portkey, then
// Bedrock, Anthropic, OpenAI-compatible).
func loadLLM(p *parser) LLM {
	l := LLM{
		PortkeyBaseURL: p.str("PORTKEY_BASE_URL"), PortkeyAPIKey: p.str("PORTKEY_API_KEY"), PortkeyVirtualKey: p.str("PORTKEY_VIRTUAL_KEY"),
		BedrockRegion:    p.str("BEDROCK_REGION"),
		AnthropicBaseURL: p.str("ANTHROPIC_BASE_URL"), AnthropicAPIKey: p.str("ANTHROPIC_API_KEY"),
		OpenAIBaseURL: p.str("OPENAI_BASE_URL"), OpenAIAPIKey: p.str("OPENAI_API_KEY"),
		Timeout:         p.dur("ANALYSIS_LLM_TIMEOUT", 100*time.Millisecond),
		CanAllow:        p.bool("ANALYSIS_LLM_CAN_ALLOW"),
		MaxSteps:        p.int("ANALYSIS_LLM_MAX_STEPS", 1, 50),
		MaxTokens:       p.int("ANALYSIS_LLM_MAX_TOKENS", 64, 64_000),
		TokenBudget:     p.int("ANALYSIS_LLM_TOKEN_BUDGET", 1000, 10_000_000),
		Retries:         p.int("ANALYSIS_LLM_RETRIES", 0, 10),
		BreakerFailures: p.int("ANALYSIS_LLM_BREAKER_FAILURES", 1, 1000),
		BreakerPause:    p.dur("ANALYSIS_LLM_BREAKER_PAUSE", time.Second),
		MaxInFlight:     p.int("ANALYSIS_LLM_MAX_IN_FLIGHT", 1, 1000),
	}
	band := p.str("ANALYSIS_LLM_BAND")
	if f, err := strconv.ParseFloat(band, 64); err != nil || f <= 0 || f >= 1 {
		p.fail("ANALYSIS_LLM_BAND", fmt.Sprintf("=%q must be a number between 0 and 1 (0.25: plans from a quarter of a limit to four times it are borderline)", band))
	} else {
		l.Band = f
	}
	mode := p.oneOf("ANALYSIS_LLM_MODE", "async", "sync", "off")
	l.Async = mode == "async"
	provider := p.oneOf("LLM_PROVIDER", "", "portkey", "bedrock", "anthropic", "openai")
	if provider == "" {
		switch {
		case l.PortkeyAPIKey != "":
			provider = "portkey"
		case l.BedrockRegion != "":
			provider = "bedrock"
		case l.AnthropicAPIKey != "":
			provider = "anthropic"
		case l.OpenAIBaseURL != "" || l.OpenAIAPIKey != "":
			provider = "openai"
		}
	}
	model, bedrockModel := p.str("LLM_MODEL"), p.str("BEDROCK_MODEL_ID")
	switch provider {
	case "portkey":
		if l.PortkeyAPIKey == "" {
			p.fail("PORTKEY_API_KEY", "is required with LLM_PROVIDER=portkey")
		}
		if model == "" {
			model = bedrockModel
		}
	case "bedrock":
		if l.BedrockRegion == "" {
			p.fail("BEDROCK_REGION", "is required with LLM_PROVIDER=bedrock")
		}
		model = bedrockModel
	case "anthropic":
		if l.AnthropicAPIKey == "" {
			p.fail("ANTHROPIC_API_KEY", "is required with LLM_PROVIDER=anthropic")
		}
	case "openai":
		if l.OpenAIBaseURL == "" && l.OpenAIAPIKey == "" {
			p.fail("OPENAI_BASE_URL", "or OPENAI_API_KEY is required with LLM_PROVIDER=openai")
		}
	}
	for _, name := range []string{"PORTKEY_BASE_URL", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"} {
		v := p.str(name)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			p.fail(name, "must be an http:// or https:// URL with a host")
		case u.User != nil:
			// A key in the URL would reach logs and error messages.
			p.fail(name, "must not hold credentials: give the key in its own variable")
		}
	}
	if mode == "off" {
		provider = ""
	}
	l.Provider, l.Model = provider, model
	return l
}
