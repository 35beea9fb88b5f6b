// Package telemetry holds pgproxy's Prometheus collectors and its HTTP side
// channel: /health, /ready and /metrics.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the proxy's collectors, registered on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	ClientsActive  prometheus.Gauge
	ClientsTotal   prometheus.Counter
	BackendConnect prometheus.Histogram
	Statement      prometheus.Histogram
	BytesToBackend prometheus.Counter
	BytesToClient  prometheus.Counter
	errors         *prometheus.CounterVec
	authFailures   *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	cancels        *prometheus.CounterVec
	refused        *prometheus.CounterVec
	backendAuth    *prometheus.CounterVec
	// Guardrails are the analysis, cache, routing and reporter collectors.
	Guardrails *Guardrails
	// Masking are the data masking collectors.
	Masking *Masking
	// LLM are the model tier's collectors.
	LLM *LLM
}

// NewMetrics creates and registers every collector.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		ClientsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgproxy_client_connections_active", Help: "Client connections open now."}),
		ClientsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgproxy_client_connections_total", Help: "Client connections accepted."}),
		BackendConnect: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pgproxy_backend_connect_seconds", Help: "Time to open a backend connection (TCP, TLS and startup).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		Statement: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pgproxy_statement_duration_seconds", Help: "Time from a client's Query or Sync to the backend's ReadyForQuery.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}),
		BytesToBackend: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgproxy_client_to_backend_bytes_total", Help: "Bytes relayed from clients to backends."}),
		BytesToClient: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgproxy_backend_to_client_bytes_total", Help: "Bytes relayed from backends to clients."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgproxy_errors_total", Help: "ErrorResponses sent to clients, by SQLSTATE class (first two characters)."},
			[]string{"class"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgproxy_auth_failures_total", Help: "Failed client authentications, by reason."},
			[]string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgproxy_rejected_connections_total", Help: "Client connections refused before a session started, by reason."},
			[]string{"reason"}),
		cancels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgproxy_cancel_requests_total", Help: "CancelRequests received, by result (forwarded, unknown_key, failed)."},
			[]string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgproxy_refused_statements_total", Help: "Statements a policy refused (the client got an ERROR), by the policy that refused."},
			[]string{"source"}),
		backendAuth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgproxy_backend_auth_failures_total", Help: "The proxy's own backend logins the server refused, by method (iam)."},
			[]string{"method"}),
	}
	reg.MustRegister(m.ClientsActive, m.ClientsTotal, m.BackendConnect, m.Statement, m.BytesToBackend,
		m.BytesToClient, m.errors, m.authFailures, m.rejected, m.cancels, m.refused, m.backendAuth,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.backendAuth.WithLabelValues("iam") // shown at 0 from the start
	m.Guardrails = newGuardrails(reg)
	m.Masking = newMasking(reg)
	m.LLM = newLLM(reg)
	return m
}

// Error counts an ErrorResponse by its SQLSTATE.
func (m *Metrics) Error(sqlstate []byte) {
	class := "unknown"
	if len(sqlstate) >= 2 {
		class = string(sqlstate[:2])
	}
	m.errors.WithLabelValues(class).Inc()
}

// AuthFailure counts a failed authentication.
func (m *Metrics) AuthFailure(reason string) { m.authFailures.WithLabelValues(reason).Inc() }

// BackendAuthFailure counts a login of the proxy's own that a backend
// refused, by method.
func (m *Metrics) BackendAuthFailure(method string) { m.backendAuth.WithLabelValues(method).Inc() }

// Rejected counts a refused connection.
func (m *Metrics) Rejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// Cancel counts a CancelRequest.
func (m *Metrics) Cancel(result string) { m.cancels.WithLabelValues(result).Inc() }

// Refused counts a statement a policy refused.
func (m *Metrics) Refused(source string) { m.refused.WithLabelValues(source).Inc() }
