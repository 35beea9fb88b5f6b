Feature: Limits that protect the proxy and the database
  Too many connections, oversize messages and clients that never finish their startup end
  that one connection with a clear error. The proxy goes on serving everyone else.

  Background:
    Given a PostgreSQL server

  Scenario: the fourth connection in a minute from one address gets 53300
    Given a proxy in front of it with:
      | MAX_CONNS_PER_IP_PER_MIN | 3 |
    And session "A" is connected as "scram_user"
    And session "B" is connected as "scram_user"
    And session "C" is connected as "scram_user"
    When "scram_user" connects with password "scram_pass"
    Then the connection is refused with SQLSTATE "53300"
    And the metric pgproxy_rejected_connections_total{reason="rate_limited"} is 1
    And session "A" is still usable

  Scenario: a third concurrent client gets 53300 when MAX_CLIENT_CONNS is 2
    Given a proxy in front of it with:
      | MAX_CLIENT_CONNS | 2 |
    And session "A" is connected as "scram_user"
    And session "B" is connected as "scram_user"
    When "scram_user" connects with password "scram_pass"
    Then the connection is refused with SQLSTATE "53300"
    And the metric pgproxy_rejected_connections_total{reason="max_connections"} is 1
    When session "B" disconnects
    Then a new session can connect within 5 seconds

  Scenario: a message larger than MAX_MESSAGE_SIZE_MB ends that connection with 54000
    Given a proxy in front of it with:
      | MAX_MESSAGE_SIZE_MB | 1 |
    And session "A" is connected as "scram_user"
    And session "B" is connected as "scram_user"
    When session "A" sends a 2 MB query
    Then session "A" was ended with SQLSTATE "54000"
    And session "B" is still usable
    And the proxy is still serving new sessions
    And the metric pgproxy_rejected_connections_total{reason="message_too_large"} is 1

  Scenario: a client that connects and sends nothing is closed after STARTUP_TIMEOUT
    Given a proxy in front of it with:
      | STARTUP_TIMEOUT | 1s |
    When a raw client connects and sends nothing
    Then the proxy closes that connection within 4 seconds
    And the proxy is still serving new sessions
    And the metric pgproxy_rejected_connections_total{reason="startup_timeout"} is 1

  Scenario: a client that stops in the middle of its StartupMessage is closed after STARTUP_TIMEOUT
    Given a proxy in front of it with:
      | STARTUP_TIMEOUT | 1s |
    When a raw client connects and sends only the first 6 bytes of a StartupMessage
    Then the proxy closes that connection within 4 seconds
    And the proxy is still serving new sessions
