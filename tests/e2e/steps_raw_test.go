package e2e

import "github.com/cucumber/godog"

// registerRawSteps defines the steps of hand-driven wire-protocol clients.
func registerRawSteps(sc *godog.ScenarioContext, w *world) {}
