Feature: Masked values through every protocol and client
  A masked column keeps its type, so binary clients go on working; the extended protocol (named
  statements, portals read a few rows at a time, pipelines) and several statements in one Query
  are masked alike; psql sees what pgx sees.

  Scenario: binary result format through pgx decodes the masked values
    When analyst reads customer 1 in binary format through the proxy
    Then analyst reads customer 8 in binary format through the proxy
    And analyst reads customer 5 in binary format through the proxy

  Scenario: a named prepared statement
    When analyst runs the named prepared statement "SELECT email FROM customers WHERE id = $1" with 1 through the proxy
    Then the values are "t***@example.co.za"
    When analyst runs the named prepared statement "SELECT full_name FROM customers WHERE id = $1 OR id = 6 ORDER BY id" with 8 through the proxy
    Then the values are "***", "Él***"

  Scenario: a named portal read two rows at a time
    When analyst fetches "SELECT card_number || ':' || account_number FROM payments ORDER BY id" from a named portal 2 rows at a time through the proxy
    Then the values are "***MASKED***:620***", "***MASKED***:620***", "***MASKED***:100***", "***MASKED***:405***", NULL

  Scenario: one pipeline of several statements
    When analyst sends one pipeline through the proxy:
      """
      SELECT email FROM customers WHERE id = 1
      SELECT 'plain ' || count(*) FROM orders
      SELECT full_name FROM vip_customers WHERE id = 101
      SELECT passport_no FROM customers WHERE id = 2
      """
    Then the values are "t***@example.co.za", "plain 8", "Ka***", "***MASKED"

  Scenario: several statements in one Query
    When analyst runs "SELECT email FROM customers WHERE id = 1; SELECT 42; SELECT card_number FROM payments WHERE id = 2; SELECT full_name FROM customers WHERE id = 6" through the proxy
    Then it succeeds with the rows "t***@example.co.za / 42 / ***MASKED*** / ***"

  Scenario: a refused statement among several in one Query: the ones before it ran, the session goes on
    When analyst runs "SELECT email FROM customers WHERE id = 1; SELECT customer_email(1); SELECT 3" through the proxy
    Then it is refused with SQLSTATE 42501 and a message containing "customer_email"
    And the session of analyst through the proxy is still usable

  Scenario: psql prints masked values
    Then psql as analyst through the proxy prints for "SELECT id, full_name, email, card_number FROM customers WHERE id IN (1, 6) ORDER BY id":
      """
      1|Th***|t***@example.co.za|***MASKED***
      6|***|***MASKED***|***MASKED***
      """

  Scenario: psql runs several statements in one -c
    Then psql as analyst through the proxy prints for "SELECT passport_no FROM customers WHERE id = 1; SELECT count(*) FROM orders":
      """
      ***MASKED
      8
      """

  Scenario: psql \copy of a masked table
    Then psql as analyst through the proxy prints for "\copy (SELECT id, email, credit_score FROM customers WHERE id < 3 ORDER BY id) TO STDOUT WITH (FORMAT csv)":
      """
      1,t***@example.co.za,
      2,p***@example.co.za,
      """
