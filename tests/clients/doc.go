// Package clients runs real PostgreSQL clients through pgproxy: psql, pgbench, pgx and
// node-postgres, each against a proxy in front of a harness cluster.
package clients
