package config

import (
	"strings"
	"testing"
	"time"
)

func loadEnv(env map[string]string) (*Config, error) {
	return Load(func(k string) string { return env[k] })
}

func withBackend(kv map[string]string) map[string]string {
	out := map[string]string{"PG_BACKEND_URL": "postgres://u:p@db/app", "ANALYSIS_ENABLED": "true"}
	for k, v := range kv {
		out[k] = v
	}
	return out
}

// TestLLMProvider: the provider is LLM_PROVIDER's or the first whose
// variables are set (Portkey, Bedrock, Anthropic, OpenAI), with its model.
func TestLLMProvider(t *testing.T) {
	cases := []struct {
		env             map[string]string
		provider, model string
	}{
		{map[string]string{}, "", ""},
		{map[string]string{"PORTKEY_API_KEY": "pk", "ANTHROPIC_API_KEY": "a"}, "portkey", "eu.anthropic.claude-sonnet-4-20250514-v1:0"},
		{map[string]string{"PORTKEY_API_KEY": "pk", "LLM_MODEL": "m"}, "portkey", "m"},
		{map[string]string{"BEDROCK_REGION": "eu-west-1", "ANTHROPIC_API_KEY": "a", "LLM_MODEL": "ignored", "BEDROCK_MODEL_ID": "b"}, "bedrock", "b"},
		{map[string]string{"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"}, "anthropic", ""},
		{map[string]string{"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}, "openai", ""},
		{map[string]string{"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "o", "PORTKEY_API_KEY": "pk"}, "openai", ""},
		{map[string]string{"ANTHROPIC_API_KEY": "a", "ANALYSIS_LLM_MODE": "off"}, "", ""},
	}
	for _, c := range cases {
		cfg, err := loadEnv(withBackend(c.env))
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		if cfg.LLM.Provider != c.provider || cfg.LLM.Model != c.model {
			t.Errorf("%v: provider %q model %q, want %q %q", c.env, cfg.LLM.Provider, cfg.LLM.Model, c.provider, c.model)
		}
	}
	cfg, err := loadEnv(withBackend(map[string]string{"ANTHROPIC_API_KEY": "a"}))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.LLM
	if !l.Async || l.Timeout != 10*time.Second || l.Band != 0.25 || l.CanAllow || l.MaxSteps != 6 || l.Retries != 2 ||
		l.BreakerFailures != 3 || l.BreakerPause != 30*time.Second || l.MaxInFlight != 4 || l.TokenBudget != 32000 || l.MaxTokens != 1024 {
		t.Errorf("defaults %+v", l)
	}
}

func TestLLMRefusals(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LLM_PROVIDER": "portkey"}, "PORTKEY_API_KEY is required"},
		{map[string]string{"LLM_PROVIDER": "bedrock"}, "BEDROCK_REGION is required"},
		{map[string]string{"LLM_PROVIDER": "anthropic"}, "ANTHROPIC_API_KEY is required"},
		{map[string]string{"LLM_PROVIDER": "openai"}, "OPENAI_BASE_URL or OPENAI_API_KEY is required"},
		{map[string]string{"LLM_PROVIDER": "gemini"}, "LLM_PROVIDER"},
		{map[string]string{"ANALYSIS_LLM_MODE": "maybe"}, "ANALYSIS_LLM_MODE"},
		{map[string]string{"ANALYSIS_LLM_BAND": "1.5"}, "ANALYSIS_LLM_BAND"},
		{map[string]string{"ANALYSIS_LLM_BAND": "0"}, "ANALYSIS_LLM_BAND"},
		{map[string]string{"OPENAI_BASE_URL": "http://user:sk-secret@127.0.0.1/v1"}, "OPENAI_BASE_URL must not hold credentials"},
		{map[string]string{"PORTKEY_BASE_URL": "ftp://x", "PORTKEY_API_KEY": "k"}, "PORTKEY_BASE_URL must be an http"},
		{map[string]string{"ANTHROPIC_API_KEY": "a", "ANALYSIS_LLM_TIMEOUT": "1ms"}, "ANALYSIS_LLM_TIMEOUT"},
	}
	for _, c := range cases {
		_, err := loadEnv(withBackend(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.env, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "sk-secret") {
			t.Errorf("%v: the error repeats the key: %v", c.env, err)
		}
	}
}

func TestBackendFlavorAuto(t *testing.T) {
	cfg, err := loadEnv(withBackend(map[string]string{"BACKEND_FLAVOR": "auto"}))
	if err != nil || cfg.Flavor != FlavorAuto {
		t.Fatalf("auto: %v %v", cfg, err)
	}
	_, err = loadEnv(map[string]string{"PG_BACKEND_URL": "postgres://cluster/dev?sslmode=verify-full", "BACKEND_FLAVOR": "auto",
		"PG_IAM_AUTH": "true", "PG_IAM_USERNAME": "u", "PG_AWS_REGION": "eu-west-1", "REDSHIFT_CLUSTER_ID": "c"})
	if err == nil || !strings.Contains(err.Error(), "BACKEND_FLAVOR=redshift") {
		t.Fatalf("IAM with auto: %v", err)
	}
	if _, err := loadEnv(withBackend(map[string]string{"BACKEND_FLAVOR": "mysql"})); err == nil {
		t.Fatal("BACKEND_FLAVOR=mysql accepted")
	}
	_, err = loadEnv(withBackend(map[string]string{"BACKEND_FLAVOR": "redshift", "MASKING_ENABLED": "true", "MASKING_CONFIG_PATH": "m.yaml"}))
	if err == nil || !strings.Contains(err.Error(), "MASKING_ENABLED") || !strings.Contains(err.Error(), "not supported with BACKEND_FLAVOR=redshift") {
		t.Fatalf("masking on Redshift: %v", err)
	}
}
