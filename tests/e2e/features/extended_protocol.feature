@extended-protocol
Feature: Extended query protocol
  Drivers pipeline Parse/Bind/Describe/Execute messages, use named statements and portals, and
  binary formats. The proxy relays them in order and keeps the session in step with the server.

  Background:
    Given a PostgreSQL server
    And a proxy in front of it
    And session "A" is connected as "scram_user"

  Scenario: a batch of parameterised queries in one pipeline
    When session "A" sends a batch of 50 parameterised queries in one pipeline
    Then session "A" is still usable

  Scenario: an error in the middle of a pipeline skips the rest until Sync, then the session recovers
    When session "A" sends a pipeline of 5 statements whose statement 3 divides by zero
    Then the statements before it returned their rows, it failed with SQLSTATE "22012" and the rest were skipped
    And session "A" is still usable
    And the metric pgproxy_errors_total{class="22"} is 1

  Scenario: named prepared statements with binary parameters and results
    When session "A" prepares statement "double_it" as "SELECT $1::int8 * 2"
    Then session "A" executes statement "double_it" with 21 in binary and gets 42 in binary
    And session "A" executes statement "double_it" with -500 in binary and gets -1000 in binary
    And session "A" runs "SELECT $1::int8 + 1" with parameter 41 in binary and gets 42 in binary

  Scenario: a named portal read a few rows at a time
    When session "A" reads "SELECT generate_series(1, 10)" through portal "p_series" of statement "s_series", 3 rows per Execute
    Then it received 10 rows in 4 Executes, the last one completing the portal
    And session "A" is still usable
