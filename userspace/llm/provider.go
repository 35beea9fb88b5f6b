package llm

import (
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Default models of the providers whose model LLM_MODEL sets.
const (
	DefaultAnthropicModel = "claude-sonnet-4-20250514"
	DefaultOpenAIModel    = "gpt-4.1"
)

// Config chooses and configures a provider (LLM_* and the providers'
// own variables; see package config).
type Config struct {
	Provider string // portkey, bedrock, anthropic, openai
	// Model is LLM_MODEL (portkey, anthropic, openai) or BEDROCK_MODEL_ID
	// (bedrock, and portkey when LLM_MODEL is unset); empty: the default.
	Model string

	PortkeyBaseURL    string
	PortkeyAPIKey     string
	PortkeyVirtualKey string

	AnthropicBaseURL string
	AnthropicAPIKey  string

	OpenAIBaseURL string
	OpenAIAPIKey  string

	// AWS is the configuration Bedrock requests are signed with (region,
	// credentials, endpoint).
	AWS aws.Config

	// HTTPClient, when set, sends the HTTP providers' requests.
	HTTPClient *http.Client
}

// NewProvider returns the provider cfg names.
func NewProvider(cfg Config) (Provider, error) {
	model := func(def string) string {
		if cfg.Model != "" {
			return cfg.Model
		}
		return def
	}
	switch cfg.Provider {
	case "portkey":
		return newPortkey(cfg.PortkeyBaseURL, cfg.PortkeyAPIKey, cfg.PortkeyVirtualKey, model(DefaultBedrockModel), cfg.HTTPClient), nil
	case "bedrock":
		if cfg.AWS.Region == "" {
			return nil, fmt.Errorf("llm: bedrock needs a region")
		}
		return newBedrock(cfg.AWS, model(DefaultBedrockModel)), nil
	case "anthropic":
		return newAnthropic(cfg.AnthropicBaseURL, cfg.AnthropicAPIKey, model(DefaultAnthropicModel), cfg.HTTPClient), nil
	case "openai":
		return newOpenAI(cfg.OpenAIBaseURL, cfg.OpenAIAPIKey, model(DefaultOpenAIModel), cfg.HTTPClient), nil
	}
	return nil, fmt.Errorf("llm: unknown provider %q (portkey, bedrock, anthropic or openai)", cfg.Provider)
}
