Feature: What reads no masked column is exactly what PostgreSQL returns
  Statements that touch no masked column, or only unmasked columns of masked tables (ids,
  counts, joins to orders, views that read no masked column, DDL on other tables, transactions),
  return through both proxies exactly the columns and rows a direct connection returns, and
  statements that touch no masked table reach the server unchanged.

  Scenario Outline: <what>
    Then analyst gets exactly what a direct connection returns for "<sql>"

    Examples:
      | what                                   | sql                                                                                                          |
      | ids of a masked table                  | SELECT id FROM customers ORDER BY id                                                                         |
      | a count of a masked table              | SELECT count(*), count(DISTINCT city) FROM customers                                                         |
      | unmasked columns with a filter         | SELECT id, city, notes FROM customers WHERE city = 'Durban' ORDER BY id                                      |
      | a join to orders                       | SELECT c.id, c.city, o.product, o.total FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.id |
      | an aggregate over the join             | SELECT c.city, sum(o.total) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.city ORDER BY 1 |
      | a view that reads no masked column     | SELECT * FROM customer_cities ORDER BY id                                                                    |
      | a view with a join and no masked value | SELECT * FROM customer_spend ORDER BY id                                                                     |
      | the inheritance child's unmasked data  | SELECT id, tier, city FROM vip_customers ORDER BY id                                                         |
      | a partitioned table's unmasked data    | SELECT id, paid_on, amount FROM payments ORDER BY id                                                         |
      | a partition's unmasked data            | SELECT id, amount FROM payments_2024 ORDER BY id                                                             |
      | orders alone                           | SELECT * FROM orders ORDER BY id                                                                             |
      | a safe function                        | SELECT order_count(1), order_count(4)                                                                        |
      | a subquery on ids                      | SELECT product FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE city = 'Pretoria') ORDER BY 1 |
      | NULL tests on masked columns           | SELECT id FROM customers WHERE email IS NULL OR card_number IS NULL ORDER BY id                              |
      | a CTE over unmasked columns            | WITH t AS (SELECT id, city FROM customers) SELECT city, count(*) FROM t GROUP BY city ORDER BY city          |
      | a lock of customer rows                | SELECT id FROM customers WHERE id = 1 FOR UPDATE                                                             |
      | a schema-qualified column reference    | SELECT public.customers.id, customers.city FROM public.customers ORDER BY 1                                  |
      | a window over unmasked columns         | SELECT id, rank() OVER (PARTITION BY city ORDER BY id) FROM customers ORDER BY id                            |

  Scenario: DDL and DML on an unrelated table, in a transaction
    Then analyst gets exactly what a direct connection returns for:
      """
      BEGIN;
      CREATE TEMP TABLE wishlist (id int PRIMARY KEY, customer_id int, product text);
      INSERT INTO wishlist SELECT o.id, o.customer_id, o.product FROM orders o JOIN customers c ON c.id = o.customer_id;
      UPDATE wishlist SET product = upper(product) WHERE id > 1004;
      DELETE FROM wishlist WHERE id = 1001;
      SELECT * FROM wishlist ORDER BY id;
      COMMIT
      """

  Scenario: a rolled back transaction over unmasked columns of a masked table
    Then analyst gets exactly what a direct connection returns for:
      """
      BEGIN;
      UPDATE customers SET city = 'Gqeberha' WHERE id = 2;
      SELECT id, city FROM customers WHERE id = 2;
      ROLLBACK;
      SELECT id, city FROM customers WHERE id = 2
      """

  Scenario Outline: <what> reaches the server unchanged
    Then "<sql>" reaches the server unchanged through the proxy

    Examples:
      | what                     | sql                                                                        |
      | a read of orders         | SELECT product, sum(total) FROM orders GROUP BY product ORDER BY product  |
      | a read of tickets        | SELECT * FROM tickets WHERE subject LIKE '%kettle%'                       |
      | a catalog query          | SELECT relname FROM pg_class WHERE relname = 'orders'                     |
      | a statement without FROM | SELECT 1 + 1 AS two, now() IS NOT NULL                                     |
      | a temporary table        | CREATE TEMP TABLE scratch AS SELECT id, product FROM orders                |
      | a setting                | SET statement_timeout = '5s'                                               |

  Scenario: writes to a masked table that return only unmasked columns
    Then analyst gets exactly what a direct connection returns for:
      """
      BEGIN;
      INSERT INTO customers (id, full_name, email, national_id, city) VALUES (700, 'New Person', 'new.person@example.com', '9909095000080', 'Durban') RETURNING id, city;
      UPDATE customers SET notes = 'called back', city = 'Gqeberha' WHERE id = 700 RETURNING id, city, notes;
      INSERT INTO orders VALUES (2001, 700, 'kettle', 1, 499.00, 'new', '2024-06-01') RETURNING id, customer_id;
      SELECT c.id, count(o.id) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = 700 GROUP BY c.id;
      DELETE FROM orders WHERE customer_id = 700 RETURNING id;
      DELETE FROM customers WHERE id = 700 RETURNING id, city;
      ROLLBACK
      """
