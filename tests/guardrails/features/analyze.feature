Feature: pgproxy analyze: the decision for one statement, before it is deployed
  `pgproxy analyze [-d database] 'SQL'` runs the analysis of the proxy (same configuration:
  thresholds, overrides, PG_BACKEND_URL's account) on one statement and prints the decision.
  Exit status 0: efficient; 1: inefficient; 2: the statement or the configuration is wrong.

  Scenario: an inefficient statement: verdict, reason, suggestion, evidence, fingerprint, exit 1
    When a developer runs pgproxy analyze "SELECT * FROM gr_orders WHERE note = 'note 42'"
    Then it exits with status 1
    And its output has a line "verdict: inefficient (planner)"
    And its output has a line starting "reason: sequential scan of public.gr_orders, about 2,000,000 rows"
    And its output has a line starting "suggestion: an index on public.gr_orders (note)"
    And its output contains "Seq Scan on public.gr_orders: plan rows"
    And its output has a line "in PROXY_MODE=blocking: refused with SQLSTATE 54000"
    And its output names the fingerprint of "SELECT * FROM gr_orders WHERE note = 'other'"
    And its output does not contain "note 42"

  Scenario: an efficient statement exits 0
    When a developer runs pgproxy analyze "SELECT status FROM gr_orders WHERE id = 42"
    Then it exits with status 0
    And its output has a line "verdict: efficient (planner)"
    And its output has a line "in PROXY_MODE=blocking: runs on the fast node"

  Scenario: a rule decides before the planner
    When a developer runs pgproxy analyze "SELECT * FROM gr_orders ORDER BY random() LIMIT 5"
    Then it exits with status 1
    And its output has a line "verdict: inefficient (rules)"

  Scenario: the mode changes what the decision means
    Given the environment has PROXY_MODE=shunt and SHUNT_NODE_URL=postgres://127.0.0.1:1/x
    When a developer runs pgproxy analyze "SELECT count(*) FROM gr_events WHERE payload LIKE '%ab%'"
    Then it exits with status 1
    And its output has a line "in PROXY_MODE=shunt: runs on the shunt node"

  Scenario: an override is reported as the source
    Given an overrides file:
      """
      overrides:
        - sql: SELECT * FROM gr_orders WHERE note = 'x'
          action: allow
          reason: reviewed by the DBA
      """
    When a developer runs pgproxy analyze "SELECT * FROM gr_orders WHERE note = 'note 7'"
    Then it exits with status 0
    And its output has a line "verdict: efficient (override)"

  Scenario Outline: <what>: exit 2 or not analysed
    When a developer runs pgproxy analyze "<sql>"
    Then it exits with status <status>
    And its output contains "<says>"

    Examples:
      | what                 | sql                                  | status | says                                  |
      | a syntax error       | SELEC 1                              | 2      | the statement does not parse          |
      | a write              | DELETE FROM gr_orders WHERE id = 1   | 0      | not analysed                          |
      | two statements       | SELECT 1; SELECT 2                   | 0      | not analysed                          |
