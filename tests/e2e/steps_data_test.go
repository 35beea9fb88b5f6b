package e2e

import "github.com/cucumber/godog"

// registerDataSteps defines the steps that move data: COPY, large values, pipelines, notifications.
func registerDataSteps(sc *godog.ScenarioContext, w *world) {}
