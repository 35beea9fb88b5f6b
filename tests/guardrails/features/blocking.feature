Feature: Blocking mode: an inefficient read statement is not run
  With ANALYSIS_ENABLED=true and PROXY_MODE=blocking, every read statement shape is judged
  once (rules on the parse tree with table facts, then PostgreSQL's planner); an inefficient
  one gets ERROR 54000 "pgproxy blocked this query: <reason>", DETAIL the evidence, HINT the
  suggestion, and the session goes on.

  Background:
    Given the proxy runs in blocking mode

  Scenario Outline: <what> is blocked, with the reason, the evidence and a suggestion
    When the client runs "<sql>"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: "
    And the refusal says "<reason>", with a detail containing "<detail>" and a hint containing "<hint>"
    And the session is still usable

    Examples:
      | what                                 | sql                                                                  | reason                  | detail     | hint            |
      | a filter on an unindexed column      | SELECT * FROM gr_orders WHERE note = 'note 7'                        | sequential scan of public.gr_orders | gr_orders | index on |
      | a leading wildcard                   | SELECT o.id FROM gr_customers c JOIN gr_orders o ON o.customer_id = c.id WHERE o.note LIKE '%7' | gr_orders | reltuples | |
      | a join without a join condition      | SELECT count(*) FROM gr_orders, gr_events                            | cartesian product       | reltuples  | join condition  |
      | a whole big table without WHERE      | SELECT * FROM gr_events                                              | public.gr_events        | reltuples  | LIMIT           |
      | a sort of millions of rows           | SELECT id FROM gr_events ORDER BY payload LIMIT 10                   | gr_events               | gr_events  |                 |
      | a sample of the whole table          | SELECT id FROM gr_events TABLESAMPLE SYSTEM (100) WHERE payload LIKE '%x%' | sample scan (SYSTEM) of public.gr_events | gr_events | |
      | a BERNOULLI sample (reads every row) | SELECT id FROM gr_events TABLESAMPLE BERNOULLI (1) WHERE payload LIKE '%x%' | sample scan (BERNOULLI) of public.gr_events | gr_events | |
      | a cursor over it                      | DECLARE gr_cur CURSOR FOR SELECT * FROM gr_orders WHERE note = 'note 17' | sequential scan of public.gr_orders | gr_orders | index on |
      | a prepared statement made in SQL      | PREPARE gr_prep AS SELECT * FROM gr_orders WHERE note = 'note 17' | sequential scan of public.gr_orders | gr_orders | index on |
      | CREATE TABLE AS                       | CREATE TEMP TABLE gr_copy AS SELECT * FROM gr_orders WHERE note = 'note 17' | sequential scan of public.gr_orders | gr_orders | index on |
      | SELECT INTO                           | SELECT * INTO TEMP gr_copy2 FROM gr_orders WHERE note = 'note 17' | sequential scan of public.gr_orders | gr_orders | index on |
      | SELECT INTO on a set operation        | SELECT * INTO TEMP gr_copy3 FROM gr_orders WHERE note = 'note 17' UNION SELECT * FROM gr_orders WHERE id = 1 | sequential scan of public.gr_orders | gr_orders | index on |
      | COPY of a query                       | COPY (SELECT * FROM gr_orders WHERE note = 'note 17') TO STDOUT | sequential scan of public.gr_orders | gr_orders | index on |
      | EXPLAIN ANALYZE                       | EXPLAIN ANALYZE SELECT * FROM gr_orders WHERE note = 'note 17' | sequential scan of public.gr_orders | gr_orders | index on |
      | a locking read                        | SELECT * FROM gr_orders WHERE note = 'note 17' FOR UPDATE | sequential scan of public.gr_orders | gr_orders | index on |

  Scenario Outline: <what> runs
    When the client runs "<sql>"
    Then the statement succeeds

    Examples:
      | what                           | sql                                                               |
      | an indexed lookup              | SELECT * FROM gr_orders WHERE id = 42                             |
      | an indexed range, limited      | SELECT id FROM gr_orders WHERE created_at > now() - interval '1 day' ORDER BY created_at LIMIT 5 |
      | a join on indexed columns      | SELECT o.id FROM gr_customers c JOIN gr_orders o ON o.customer_id = c.id WHERE c.id = 7 |
      | a small table in full          | SELECT * FROM gr_countries                                        |
      | a small sample of a big table  | SELECT count(*) FROM gr_events TABLESAMPLE SYSTEM (0.01)          |
      | a prepared indexed lookup      | PREPARE gr_prep_ok AS SELECT * FROM gr_orders WHERE id = 42       |
      | EXPLAIN without ANALYZE        | EXPLAIN SELECT * FROM gr_orders WHERE note = 'note 18'            |
      | a write (not analysed)         | SELECT 1                                                          |

  Scenario: the extended protocol is judged the same, with parameters (a generic plan)
    Given the client uses the extended protocol
    When the client runs "SELECT * FROM gr_orders WHERE id = 7"
    Then the statement succeeds
    When the client runs "SELECT * FROM gr_orders WHERE note = 'note 9'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: "
    And the session is still usable

  Scenario: inside a transaction block, a blocked statement aborts the block, as any error
    Given the client uses the simple protocol
    When the client runs "BEGIN"
    And the client runs "SELECT * FROM gr_orders WHERE note = 'note 11'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: "
    And the session's transaction status is "E"
    When the client runs "SELECT 1"
    Then the statement is refused with SQLSTATE 25P02 and a message starting "current transaction is aborted"
    When the client runs "ROLLBACK"
    Then the session is still usable

  Scenario: in a pipeline, a blocked statement rolls back what came before it
    When the client runs "CREATE TABLE IF NOT EXISTS gr_pipe (n int)"
    And the client runs "TRUNCATE gr_pipe"
    And the client sends one pipeline of "INSERT INTO gr_pipe VALUES (1)", "SELECT * FROM gr_orders WHERE note = 'note 12'" and "INSERT INTO gr_pipe VALUES (2)"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: "
    And the fast node has 0 rows in gr_pipe
    And the session is still usable

  Scenario: a shape is analysed once; later executions are decided from the cache
    Given the metrics are noted
    When the client runs "SELECT * FROM gr_orders WHERE note = 'first'"
    And the client runs "SELECT * FROM gr_orders WHERE note = 'second'"
    And the client runs "SELECT * FROM gr_orders WHERE note = 'third'"
    Then the metric pgproxy_analysis_decisions_total{verdict="inefficient",source="planner"} rose by 1
    And the metric pgproxy_analysis_decisions_total{verdict="inefficient",source="memory"} rose by 2
    And the metric pgproxy_refused_statements_total{source="memory"} rose by 2
