package config

import "errors"

// processOnly are the variables read from the process environment only: a
// line for them in .env would have no effect, so FromEnvironment refuses it.
var processOnly = []string{"LOW_LATENCY_RUNTIME"}

// LowLatencyRuntime parses LOW_LATENCY_RUNTIME. cmd/pgproxy calls it with
// os.Getenv first thing, to decide whether to re-execute itself with a
// GODEBUG setting; that happens before .env is read, hence "process
// environment only". An invalid value is an error naming the variable;
// Load reports the same error, so start-up stops with it.
func LowLatencyRuntime(getenv func(string) string) (bool, error) {
	p := &parser{getenv: getenv}
	on := p.bool("LOW_LATENCY_RUNTIME")
	return on, errors.Join(p.errs...)
}
