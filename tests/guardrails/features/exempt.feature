Feature: Roles exempt from analysis
  ANALYSIS_EXEMPT_ROLES names token roles (or, in passthrough, database users) whose statements
  are not analysed: a batch account running known heavy reports, say.

  Scenario: an exempt user's heavy statement runs; others are still blocked
    Given the proxy runs in blocking mode with:
      | ANALYSIS_EXEMPT_ROLES | reporting, scram_user |
    When the client runs "SELECT count(*) FROM gr_orders WHERE note = 'note 1'"
    Then the statement succeeds with "20"

  Scenario: without the exemption the same statement is blocked
    Given the proxy runs in blocking mode with:
      | ANALYSIS_EXEMPT_ROLES | reporting |
    When the client runs "SELECT count(*) FROM gr_orders WHERE note = 'note 1'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: "
