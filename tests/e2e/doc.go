// Package e2e holds the end-to-end feature suite of pgproxy: Gherkin scenarios under
// features/, run by godog inside `go test` (TestFeatures), against real PostgreSQL clusters and
// real pgproxy processes started by tests/harness.
//
// Each feature file is a subtest of TestFeatures and each scenario a subtest of its feature, so
// `go test ./tests/e2e -run 'TestFeatures/cancel/'` runs one feature. GODOG_TAGS selects
// scenarios by tag expression (for example GODOG_TAGS='~@slow').
package e2e
