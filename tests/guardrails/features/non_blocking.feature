Feature: Non-blocking mode: everything runs, inefficient statements are recorded
  With PROXY_MODE=non-blocking an inefficient statement runs as usual; it is logged and, with
  REPORTER_DB_URL, recorded in pgproxy.query_issues (action "logged"). Every finished
  statement gets a row in pgproxy.query_metrics.

  Scenario: an inefficient statement runs and is recorded; statement text is not stored by default
    Given a reporter database
    And the proxy runs in non-blocking mode
    When the client runs "SELECT count(*) FROM gr_orders WHERE note = 'note 5'"
    Then the statement succeeds with "20"
    And within 10 seconds query_issues has a row with action "logged" and reason containing "sequential scan of public.gr_orders"
    And within 10 seconds query_metrics has 1 row for "SELECT count(*) FROM gr_orders WHERE note = 'note 5'" with node "fast" and verdict "inefficient"
    And the proxy log says "inefficient statement"
    And the reporter holds no statement text

  Scenario: efficient statements are recorded in query_metrics only
    Given a reporter database
    And the proxy runs in non-blocking mode
    When the client runs "SELECT name FROM gr_customers WHERE id = 5"
    And the client runs "SELECT name FROM gr_customers WHERE id = 6"
    Then the statement succeeds with "Name 6"
    And within 10 seconds query_metrics has 2 rows for "SELECT name FROM gr_customers WHERE id = 1" with node "fast" and verdict "efficient"

  Scenario: with STORE_RAW_QUERY=true the text is stored without its constants
    Given a reporter database
    And the proxy runs in non-blocking mode with:
      | STORE_RAW_QUERY | true |
    When the client runs "SELECT name FROM gr_customers WHERE email = 'secret@example.com'"
    Then the statement succeeds
    And the reporter holds the text of "SELECT name FROM gr_customers WHERE email = 'x'" as "SELECT name FROM gr_customers WHERE email = $1"
