@scram-plus
Feature: SCRAM channel binding when both links use TLS
  The client's TLS channel ends at the proxy, and the proxy opens its own TLS channel to
  PostgreSQL, so SCRAM-SHA-256-PLUS (channel binding) cannot work end to end. The proxy removes
  it from the mechanisms offered to the client. A client that announces it could have used
  channel binding (the 'y' flag, libpq's and pgx's default channel_binding=prefer over TLS) is
  refused by PostgreSQL as a downgrade; the proxy tells it to set channel_binding=disable.
  The proxy verifies PostgreSQL's certificate (sslmode=verify-full, PG_BACKEND_CA_PATH).

  Background:
    Given a PostgreSQL server with TLS
    And a proxy with TLS for clients in front of it

  Scenario: PostgreSQL offers SCRAM-SHA-256-PLUS, the proxy does not
    Then PostgreSQL itself offers "SCRAM-SHA-256-PLUS" to "scram_user" over TLS
    And the proxy offers only "SCRAM-SHA-256" to "scram_user" over TLS

  Scenario: a client with channel_binding=disable logs in over TLS on both links
    When "scram_user" connects with password "scram_pass" over TLS with "channel_binding=disable"
    Then the connection succeeds
    And the session runs "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" and gets "t"

  Scenario: a client that prefers channel binding is told to disable it
    When "scram_user" connects with password "scram_pass" over TLS
    Then the connection is refused with SQLSTATE "28000"
    And the error hint mentions "channel_binding=disable"
    And the proxy is still serving new sessions

  Scenario: a client that requires channel binding fails in the client
    When "scram_user" connects with password "scram_pass" over TLS with "channel_binding=require"
    Then the connection fails in the client with an error mentioning "channel binding"

