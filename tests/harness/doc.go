// Package harness starts the real servers that end-to-end tests need: PostgreSQL clusters made
// with initdb in temporary folders, redis-server, and the pgproxy binary itself.
//
// Everything is started on free loopback ports and stopped in t.Cleanup. When the tests run as
// root, PostgreSQL runs as the "postgres" OS user. Missing programs skip a test with a printed
// reason, or fail it when the CI environment variable is set (see Require).
//
// Test packages that share one cluster or one proxy build between tests use Run from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		pg := harness.SharedPostgres(t)
//		proxy := harness.StartProxy(t, map[string]string{"PG_BACKEND_URL": pg.BackendURL("testdb")})
//		conn, err := pgx.Connect(ctx, proxy.DSN(harness.ScramUser, harness.ScramPass, "testdb", ""))
//		...
//	}
//
// Other helpers: StartPostgres (a cluster of the test's own, with PGOptions for TLS, another
// listen address or extra settings; Stop/Start/Kill for restarts), StartRedis, StartRedisWith
// (TLS, ACL arguments; Stop/Kill/Start on the same port, Pause/Resume), GenerateCerts,
// ProbeAuth (which authentication a server or the proxy asks for) and NodeQuery (the
// node-postgres client in tests/node). Run also removes the per-process folder under
// os.TempDir that holds cluster folders and the proxy binary; folders of crashed test binaries
// are swept by the next one.
package harness
