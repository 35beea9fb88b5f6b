Feature: Overrides: an operator allows or blocks a statement shape in seconds, without a restart
  ANALYSIS_OVERRIDES_PATH lists fingerprints (or statements) with allow or block. The file is
  re-read as soon as file events report a change, and on SIGHUP; a broken file keeps the previous overrides.

  Scenario: a false positive is unblocked by an override, within seconds, without a restart
    Given an empty overrides file
    And the proxy runs in blocking mode
    When the client runs "SELECT count(*) FROM gr_orders WHERE note = 'note 3'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: "
    When the overrides file becomes:
      """
      overrides:
        - sql: SELECT count(*) FROM gr_orders WHERE note = 'any'
          action: allow
          reason: reviewed by the DBA
      """
    Then within 5 seconds "SELECT count(*) FROM gr_orders WHERE note = 'note 3'" succeeds
    And the statement succeeds with "20"
    And the proxy log says "overrides reloaded"
    And the metric pgproxy_analysis_decisions_total{verdict="efficient",source="override"} rose by at least 1

  Scenario: a block override blocks an efficient statement; a broken file keeps it in force
    Given an overrides file:
      """
      overrides:
        - sql: SELECT name FROM gr_countries WHERE code = 'c1'
          action: block
          reason: this report is being retired
      """
    And the proxy runs in blocking mode
    When the client runs "SELECT name FROM gr_countries WHERE code = 'c2'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: blocked by an override: this report is being retired"
    When the overrides file becomes:
      """
      overrides:
        - sql: SELECT name FROM gr_countries WHERE code = 'c1'
          action: perhaps
      """
    And the proxy gets SIGHUP
    Then the proxy log says "overrides not reloaded"
    And the proxy log says "line 2"
    When the client runs "SELECT name FROM gr_countries WHERE code = 'c3'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: blocked by an override"
    And the metric pgproxy_overrides_reloads_total{result="error"} rose by at least 1

  Scenario: a prepared statement run again and again is blocked at its next execution once an override blocks it
    The session gives a prepared statement's decision again to its next executions (a second at
    most); an override put in force ends that at once.
    Given an empty overrides file
    And the proxy runs in blocking mode
    And the client uses the extended protocol
    And the metrics are noted
    When the client runs "SELECT name FROM gr_countries WHERE code = 'c2'"
    And the client runs "SELECT name FROM gr_countries WHERE code = 'c2'"
    And the client runs "SELECT name FROM gr_countries WHERE code = 'c2'"
    Then the statement succeeds with "Country 2"
    And the metric pgproxy_analysis_decisions_total{verdict="efficient",source="memory"} rose by at least 1
    When the overrides file becomes:
      """
      overrides:
        - sql: SELECT name FROM gr_countries WHERE code = 'c1'
          action: block
          reason: this report is being retired
      """
    Then within 5 seconds "SELECT name FROM gr_countries WHERE code = 'c2'" is refused with SQLSTATE 54000
    And the proxy log says "overrides reloaded"
    When the client runs "SELECT name FROM gr_countries WHERE code = 'c2'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: blocked by an override: this report is being retired"
