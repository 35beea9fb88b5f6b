@robustness
Feature: Sessions come and go cleanly
  Clients that disconnect abruptly, misbehave during startup or abort a COPY do not leave
  backend connections behind and do not disturb other sessions.

  Background:
    Given a PostgreSQL server

  Scenario: clients that disconnect abruptly free their backends
    Given a proxy in front of it
    And session "A" is connected as "scram_user"
    And session "B" is connected as "scram_user"
    And session "C" is connected as "scram_user"
    When session "A" runs "BEGIN"
    And session "A" disconnects abruptly
    Then the backend of session "A" is gone from pg_stat_activity within 2 seconds
    # Like PostgreSQL itself, the backend notices the lost client when the statement ends.
    When session "B" starts "SELECT pg_sleep(1)"
    And session "B" disconnects abruptly
    Then the backend of session "B" is gone from pg_stat_activity within 5 seconds
    And session "C" is still usable
    When session "C" disconnects
    Then the metric pgproxy_client_connections_active is 0

  Scenario: many concurrent sessions each get their own answers and leave nothing behind
    Given a proxy in front of it with:
      | MAX_CONNS_PER_IP_PER_MIN | 0 |
    When 40 sessions as "scram_user" with application_name "e2e-concurrent" each run 50 queries at the same time
    Then PostgreSQL has no session with application_name "e2e-concurrent" within 5 seconds
    And the metric pgproxy_client_connections_total is 40
    And the metric pgproxy_client_connections_active is 0

  Scenario: sslmode=prefer falls back to plaintext when the proxy has no TLS
    Given a proxy in front of it
    When "scram_user" connects with password "scram_pass" with "sslmode=prefer"
    Then the connection succeeds
    And the connection is not encrypted

  Scenario: a GSSENCRequest is declined and the client goes on in plaintext
    Given a proxy in front of it
    When a raw client sends a GSSENCRequest and gets "N"
    And a raw client logs in as "trust_user"
    Then the raw session runs "SELECT current_user" and gets "trust_user"

  Scenario: an SSLRequest is declined when the proxy has no TLS
    Given a proxy in front of it
    When a raw client sends an SSLRequest and gets "N"
    And a raw client logs in as "trust_user"
    Then the raw session runs "SELECT 1" and gets "1"

  Scenario: a client that never answers the password challenge is closed after STARTUP_TIMEOUT
    Given a proxy in front of it with:
      | STARTUP_TIMEOUT | 2s |
    When a raw client sends a StartupMessage as "scram_user" and never answers the password challenge
    Then the proxy closes that connection within 6 seconds
    And the proxy is still serving new sessions

  Scenario: something that is not PostgreSQL is turned away
    Given a proxy in front of it
    When a raw client sends "GET / HTTP/1.1\r\n\r\n" instead of a StartupMessage
    Then the proxy closes that connection within 2 seconds
    And the proxy is still serving new sessions

  Scenario: an unknown database is reported with PostgreSQL's own error
    Given a proxy in front of it
    When "scram_user" connects with password "scram_pass" to database "e2e_no_such_db"
    Then the connection is refused with SQLSTATE "3D000"
    And the metric pgproxy_errors_total{class="3D"} is 1
    And the metric pgproxy_auth_failures_total{reason="unknown_database"} is 1

  Scenario: a COPY aborted by the client, and one with a bad row, leave the session usable
    Given a proxy in front of it
    And session "A" is connected as "scram_user"
    When session "A" aborts a COPY FROM STDIN into a new table "e2e_copy_abort" after 1000 rows
    Then the last statement of session "A" failed with SQLSTATE "57014"
    And table "e2e_copy_abort" is empty
    And session "A" is still usable
    When session "A" copies 5000 rows into a new table "e2e_copy_bad" where row 4000 has a bad number
    Then the last statement of session "A" failed with SQLSTATE "22P02"
    And table "e2e_copy_bad" is empty
    And session "A" is still usable
