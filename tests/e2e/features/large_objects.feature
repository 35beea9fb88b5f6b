@large-objects
Feature: Large objects with psql (FunctionCall messages)
  psql's \lo_import and \lo_export use libpq's large-object interface, which calls lo_open,
  lowrite, loread and lo_close with FunctionCall messages, not SQL. They work through the proxy.

  Scenario: a file goes in as a large object and comes back unchanged
    Given a PostgreSQL server
    And a proxy in front of it
    When psql as "scram_user" imports a 300 KB file as a large object
    Then psql exports that large object to a file identical to the original
    And psql unlinks that large object
