// Package config reads pgproxy's settings from the environment (and an
// optional .env file), applies defaults and validates them into typed
// sections. An invalid value produces an error naming the variable and the
// values it accepts; all of them are reported at once.
//
// # Entry points
//
//   - Environment(".env") gives the lookup: the process environment first,
//     then .env, which may not name an unknown variable or one read from the
//     process environment only.
//   - Load (explicit mode) and LoadAgent (pgproxy agent, with its own
//     PG_BACKEND_URL default) parse every section through that lookup.
//   - LowLatencyRuntime parses LOW_LATENCY_RUNTIME on its own, for the
//     re-exec cmd/pgproxy does before anything else.
//   - ParseBackendURL is the one parser of PostgreSQL URLs; the
//     service-account login is built from its result.
//
// # Adding a variable or a section
//
// A variable is a row in Vars, in its section's block (that is where --help
// and Known get it); a field in the section's struct, set and checked by the
// section's load function (loadExplicit, loadOIDC, loadAgent) with the
// parser's typed helpers (str, bool, int, dur, addr, oneOf, …) and p.fail
// for rules across variables; and a row in the README table under the
// section's heading, in the same words for the default. A new section is a
// Section constant with a note, a struct in a file of its own, a load
// function called from load, a field in Config and a README table under a
// heading containing its title. TestREADMEVariablesMatchVars fails when the
// README and Vars disagree.
package config
