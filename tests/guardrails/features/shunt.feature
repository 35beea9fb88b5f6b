Feature: Shunt mode: inefficient reads run on the shunt node, on the same client session
  With PROXY_MODE=shunt an inefficient SELECT runs on SHUNT_NODE_URL and the others on the fast
  node. Passthrough clients give the proxy their password (it logs in to both nodes as them).
  Writes and transaction blocks are refused with 25006. Each node's node_marker names it.

  Background:
    Given a reporter database
    And the proxy runs in shunt mode

  Scenario Outline: an inefficient read runs on the shunt node, an efficient one on the fast node (<protocol> protocol)
    Given the client uses the <protocol> protocol
    When the client runs "SELECT (SELECT name FROM node_marker), count(*) FROM gr_orders WHERE note = 'note 7'"
    Then the answer comes from the shunt node
    When the client runs "SELECT (SELECT name FROM node_marker), id FROM gr_orders WHERE id = 7"
    Then the answer comes from the fast node
    When the client runs "SELECT (SELECT name FROM node_marker), count(*) FROM gr_orders WHERE note = 'note 8'"
    Then the answer comes from the shunt node
    And within 10 seconds query_issues has a row with action "shunted" and reason containing "gr_orders"
    And within 10 seconds query_metrics has 2 rows for "SELECT (SELECT name FROM node_marker), count(*) FROM gr_orders WHERE note = 'x'" with node "shunt" and verdict "inefficient"

    Examples:
      | protocol |
      | simple   |
      | extended |

  Scenario: the shunt runs as the same user, with the session's settings
    When the client runs "SET application_name = 'report-42'"
    And the client runs "SELECT (SELECT name FROM node_marker), current_user, current_setting('application_name'), count(*) FROM gr_orders WHERE note = 'note 9'"
    Then the statement succeeds with "shunt|scram_user|report-42|0"

  Scenario Outline: <what> is refused with 25006
    When the client runs "<sql>"
    Then the statement is refused with SQLSTATE 25006 and a message starting "pgproxy is in shunt mode: "
    And the session is still usable

    Examples:
      | what               | sql                                          |
      | BEGIN              | BEGIN                                        |
      | an INSERT          | INSERT INTO gr_countries VALUES ('xx', 'X')  |
      | an UPDATE          | UPDATE gr_countries SET name = 'Y'           |
      | DDL                | CREATE TABLE gr_nope (a int)                 |
      | SELECT FOR UPDATE  | SELECT * FROM gr_countries FOR UPDATE        |

  Scenario: a shunt node that is down: the statement gets 08006, the session goes on
    Given the shunt node stops
    When the client runs "SELECT (SELECT name FROM node_marker), count(*) FROM gr_orders WHERE note = 'note 10'"
    Then the statement is refused with SQLSTATE 08006 and a message starting "the shunt node is not available"
    And the session is still usable
    When the client runs "SELECT (SELECT name FROM node_marker), id FROM gr_orders WHERE id = 8"
    Then the answer comes from the fast node
    Given the shunt node starts again

  Scenario: the routed statements are counted
    Given the metrics are noted
    When the client runs "SELECT (SELECT name FROM node_marker), count(*) FROM gr_orders WHERE note = 'note 11'"
    And the client runs "SELECT (SELECT name FROM node_marker), id FROM gr_orders WHERE id = 9"
    Then the metric pgproxy_routed_statements_total{node="shunt"} rose by 1
    And the metric pgproxy_routed_statements_total{node="fast"} rose by at least 1
