// Package guardrails holds the end-to-end tests of the query analysis and
// the proxy modes (blocking, non-blocking, shunt), the decision cache
// (in-process and a real redis-server), overrides, exemptions, the reporter
// and their faults, against real PostgreSQL clusters: a fast node with
// tables of millions of rows, a shunt node, a reporter database.
package guardrails
