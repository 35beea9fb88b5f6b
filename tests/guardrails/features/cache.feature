Feature: The decision cache: in process, then Valkey, shared by replicas and kept across restarts
  A decision is made once per statement shape and database and cached in process and in
  Valkey (keys pgproxy:decision:…). A restarted proxy finds its decisions in Valkey.

  Scenario: a restarted proxy finds its decisions in Valkey
    Given a Valkey server
    And the proxy runs in blocking mode
    When the client runs "SELECT * FROM gr_orders WHERE note = 'cache me'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: "
    And the metric pgproxy_analysis_decisions_total{verdict="inefficient",source="planner"} rose by 1
    Given the proxy restarts
    And the metrics are noted
    When the client runs "SELECT * FROM gr_orders WHERE note = 'cached'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: sequential scan"
    And the metric pgproxy_analysis_decisions_total{verdict="inefficient",source="valkey"} rose by 1
    And the metric pgproxy_analysis_decisions_total{source="planner"} did not move
    When the client runs "SELECT * FROM gr_orders WHERE note = 'cached again'"
    Then the metric pgproxy_analysis_decisions_total{verdict="inefficient",source="memory"} rose by 1

  Scenario: without Valkey the decisions live in process only
    Given the proxy runs in blocking mode
    When the client runs "SELECT id FROM gr_events WHERE payload = 'a'"
    And the client runs "SELECT id FROM gr_events WHERE payload = 'b'"
    Then the metric pgproxy_analysis_decisions_total{verdict="inefficient",source="memory"} rose by 1
    And the metric pgproxy_decision_cache_lookups_total{tier="valkey"} did not move
