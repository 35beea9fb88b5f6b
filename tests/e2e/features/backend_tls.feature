@backend-tls
Feature: TLS from the proxy to PostgreSQL
  PG_BACKEND_URL's sslmode and PG_BACKEND_CA_PATH decide how the proxy protects its own link to
  PostgreSQL. A certificate it cannot verify stops sessions and readiness alike.

  Background:
    Given a PostgreSQL server with TLS

  Scenario: sslmode=verify-full with the server's CA
    Given a proxy in front of it
    When "scram_user" connects with password "scram_pass"
    Then the connection succeeds
    And the session runs "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" and gets "t"
    And /ready answers 200

  Scenario: sslmode=require encrypts without verifying
    Given a proxy in front of it with:
      | PG_BACKEND_URL     | {backend URL with sslmode=require} |
      | PG_BACKEND_CA_PATH |                                    |
    When "scram_user" connects with password "scram_pass"
    Then the connection succeeds
    And the session runs "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" and gets "t"

  Scenario: a backend certificate the proxy cannot verify is refused, and /ready says so
    Given a proxy in front of it with:
      | PG_BACKEND_CA_PATH | {client CA} |
    When "scram_user" connects with password "scram_pass"
    Then the connection is refused with SQLSTATE "08006"
    And /ready answers 503 within 5 seconds
