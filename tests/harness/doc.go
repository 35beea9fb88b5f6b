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
package harness
