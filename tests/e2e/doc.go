// Package e2e holds the end-to-end feature suite of pgproxy: Gherkin scenarios under
// features/, run by godog inside `go test` (TestFeatures), against real PostgreSQL clusters and
// real pgproxy processes started by tests/harness.
//
// Each feature file is a subtest of TestFeatures and each scenario a subtest of its feature:
//
//	go test ./tests/e2e -run 'TestFeatures/cancel'           # one feature
//	go test ./tests/e2e -run 'TestFeatures/tls/direct_TLS'   # scenarios by name
//	GODOG_TAGS='@tls,@scram-plus' go test ./tests/e2e        # by tag expression
//	GODOG_TAGS='~@dedicated-server' go test ./tests/e2e      # skip scenarios with their own cluster
//
// Every feature is tagged with its file name (@auth, @tls, @limits, ...); scenarios that start
// a PostgreSQL cluster of their own are tagged @dedicated-server. Scenarios share one default
// cluster (and one TLS cluster) and start their own proxy; a failing scenario prints the proxy's
// and the server's logs.
package e2e
