@tls
Feature: TLS between clients and the proxy
  With TLS_ENABLED the proxy terminates client TLS with its own certificate. Clients can verify
  it (sslmode=verify-full), the operator can refuse plaintext clients, and PostgreSQL 17 clients
  can start TLS directly (sslnegotiation=direct, ALPN "postgresql").

  Background:
    Given a PostgreSQL server

  Scenario: a client that verifies the proxy's certificate connects over TLS
    Given a proxy with TLS for clients in front of it
    When "scram_user" connects with password "scram_pass" over TLS
    Then the connection succeeds
    And the connection is encrypted with TLS
    And the session runs "SELECT 6 * 7" and gets "42"

  Scenario: a plaintext client is refused with 28000 when client TLS is required
    Given a proxy with TLS for clients in front of it with:
      | REQUIRE_CLIENT_TLS | true |
    When "scram_user" connects with password "scram_pass" over plaintext
    Then the connection is refused with SQLSTATE "28000"
    When "scram_user" connects with password "scram_pass" over TLS
    Then the connection succeeds

  Scenario: direct TLS without an SSLRequest (sslnegotiation=direct)
    Given a proxy with TLS for clients in front of it
    When "scram_user" connects with password "scram_pass" over direct TLS
    Then the connection succeeds
    And the connection is encrypted with TLS
    And the connection negotiated ALPN "postgresql"
    And the session runs "SELECT 6 * 7" and gets "42"

  Scenario: a query is cancelled over a TLS session
    Given a proxy with TLS for clients in front of it
    And session "A" is connected as "scram_user" over TLS
    When session "A" starts "SELECT pg_sleep(30)"
    And session "A" cancels its query
    Then the query of session "A" fails with SQLSTATE "57014" within 5 seconds
    And session "A" is still usable

  Scenario: a hand-written direct TLS client with ALPN "postgresql" is served
    Given a proxy with TLS for clients in front of it
    When a raw client starts TLS directly with ALPN "postgresql"
    And a raw client logs in as "trust_user"
    Then the raw session runs "SELECT current_user" and gets "trust_user"

  Scenario: direct TLS without ALPN is turned away, as PostgreSQL 17 does
    Given a proxy with TLS for clients in front of it
    Then a raw client starting TLS directly without ALPN is turned away
    And the proxy is still serving new sessions

  Scenario: a client that stalls after its SSLRequest is closed after STARTUP_TIMEOUT
    Given a proxy with TLS for clients in front of it with:
      | STARTUP_TIMEOUT | 2s |
    When a raw client sends an SSLRequest and gets "S"
    Then the proxy closes that connection within 6 seconds without sending anything
    And the proxy is still serving new sessions
