package telemetry

import "github.com/prometheus/client_golang/prometheus"

// LLM are the collectors of the model tier (package llm): requests by
// provider and result, their latency, tokens, and the breaker. Labels are
// bounded: four providers, a handful of results, two token kinds.
type LLM struct {
	Requests       *prometheus.CounterVec   // provider, result
	RequestSeconds *prometheus.HistogramVec // provider
	Tokens         *prometheus.CounterVec   // provider, kind
	BreakerOpened  *prometheus.GaugeVec     // provider
	Answers        *prometheus.CounterVec   // outcome
}

// llmResults are the request results known in advance: the provider in
// use gets a series of each from the start, at 0 (Provider).
var llmResults = []string{"ok", "throttled", "server_error", "timeout", "error", "rejected"}

func newLLM(reg *prometheus.Registry) *LLM {
	l := &LLM{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_llm_requests_total",
			Help: "Requests to the model provider, by provider and result (ok, throttled, server_error, timeout, error, rejected: not sent, the breaker is open)."},
			[]string{"provider", "result"}),
		RequestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pgproxy_llm_request_seconds",
			Help:    "Time of one request to the model provider.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10)}, []string{"provider"}),
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_llm_tokens_total",
			Help: "Tokens the model provider counted, by kind (input, output)."}, []string{"provider", "kind"}),
		BreakerOpened: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgproxy_llm_breaker_open",
			Help: "1 while the provider's circuit breaker is open (decisions come from rules and the planner alone)."}, []string{"provider"}),
		Answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_llm_answers_total",
			Help: "Conversations of the model tier, by outcome (decided, explained, not_trusted, failed)."}, []string{"outcome"}),
	}
	reg.MustRegister(l.Requests, l.RequestSeconds, l.Tokens, l.BreakerOpened, l.Answers)
	for _, o := range []string{"decided", "explained", "not_trusted", "failed"} {
		l.Answers.WithLabelValues(o)
	}
	return l
}

// Provider prepares the series of the provider in use.
func (l *LLM) Provider(name string) {
	for _, r := range llmResults {
		l.Requests.WithLabelValues(name, r)
	}
	l.RequestSeconds.WithLabelValues(name)
	l.Tokens.WithLabelValues(name, "input")
	l.Tokens.WithLabelValues(name, "output")
	l.BreakerOpened.WithLabelValues(name).Set(0)
}

// Request counts one request (llm.Observer).
func (l *LLM) Request(provider, result string, seconds float64) {
	l.Requests.WithLabelValues(provider, result).Inc()
	if result != "rejected" {
		l.RequestSeconds.WithLabelValues(provider).Observe(seconds)
	}
}

// TokensUsed counts tokens (llm.Observer).
func (l *LLM) TokensUsed(provider, kind string, n int64) {
	if n > 0 {
		l.Tokens.WithLabelValues(provider, kind).Add(float64(n))
	}
}

// BreakerOpen sets the breaker gauge (llm.Observer).
func (l *LLM) BreakerOpen(provider string, open bool) {
	v := 0.0
	if open {
		v = 1
	}
	l.BreakerOpened.WithLabelValues(provider).Set(v)
}
