Feature: Faults: nothing lost, nothing stuck
  Valkey down or slow, the reporter down, EXPLAIN failing, the proxy's own catalog connection
  failing: statements go on, decisions fall back, records are queued or counted.

  Scenario: Valkey goes down and comes back; statements are decided meanwhile, without waiting
    Given a Valkey server
    And the proxy runs in blocking mode
    When the client runs "SELECT * FROM gr_orders WHERE id = 11"
    Then the statement succeeds
    Given Valkey stops
    When the client runs "SELECT * FROM gr_orders WHERE note = 'while valkey is down'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: "
    When the client runs "SELECT * FROM gr_orders WHERE id = 12"
    Then the statement succeeds
    And the statement took less than 1000 ms
    Given Valkey starts again
    Then the proxy log says "Valkey available"

  Scenario: the reporter database is down for a while: statements are not affected, records are written when it is back
    Given a reporter database
    And the proxy runs in non-blocking mode
    And the reporter database stops
    When the client runs "SELECT count(*) FROM gr_orders WHERE note = 'note 21'"
    Then the statement succeeds with "20"
    And the statement took less than 2000 ms
    Given the reporter database starts again
    Then within 30 seconds query_issues has a row with action "logged" and reason containing "gr_orders"

  Scenario Outline: a statement the planner cannot read (a temporary table) gets the ANALYSIS_FAIL_MODE=<mode> answer
    Given the proxy runs in blocking mode with:
      | ANALYSIS_FAIL_MODE | <mode> |
    And the client uses the simple protocol
    When the client runs "CREATE TEMP TABLE gr_tmp AS SELECT 1 AS a"
    And the client runs "SELECT a FROM gr_tmp WHERE a = 1"
    Then <outcome>
    And the metric pgproxy_analysis_decisions_total{source="fallback"} rose by at least 1

    Examples:
      | mode   | outcome                                                                                            |
      | open   | the statement succeeds with "1"                                                                    |
      | closed | the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: not judged" |

  Scenario: the proxy's own catalog connection cannot log in: statements still run (fail open)
    Given the proxy runs in blocking mode with:
      | PG_BACKEND_URL | postgres://scram_user:wrong-password@FAST/testdb?sslmode=disable |
    When the client runs "SELECT count(*) FROM gr_orders WHERE note = 'note 4'"
    Then the statement succeeds with "20"
    And the metric pgproxy_analysis_decisions_total{source="fallback"} rose by at least 1
