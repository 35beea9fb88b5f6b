package e2e

import "github.com/cucumber/godog"

// registerClientSteps defines the steps that run other real clients (psql) through the proxy.
func registerClientSteps(sc *godog.ScenarioContext, w *world) {}
