// Package aws holds the end-to-end tests of the proxy's AWS identity: RDS /
// Aurora IAM logins, roles assumed through STS (also by web identity, as
// IRSA does), and ElastiCache IAM for the decision cache. No AWS is
// reachable here: the harness's stand-ins speak the real protocols (STS's
// query API and XML, PostgreSQL with IAM token checks in front of a real
// PostgreSQL, RESP with IAM token checks in front of a real redis-server)
// and check the proxy's SigV4 tokens with code of their own.
package aws
