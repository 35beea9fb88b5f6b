// Package masking holds the end-to-end proof of data masking: a real
// PostgreSQL cluster with a schema of sensitive data (testdata/schema.sql),
// the real pgproxy binary with MASKING_ENABLED=true (testdata/masking.yaml
// and its variant without the keyed hash), and real clients (pgx in text and
// binary formats, simple and extended protocol, psql).
//
// The features show each mask's documented value, reloads and start-up
// errors, the protocols, that statements over unmasked data return exactly
// what PostgreSQL returns, and the bypass corpus (testdata/bypasses.yaml):
// every attempt leaks a clear value on a direct connection and is masked or
// refused through the proxy.
package masking
