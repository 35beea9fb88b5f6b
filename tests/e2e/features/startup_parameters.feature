@startup-parameters
Feature: Startup parameters reach PostgreSQL
  What a client puts in its StartupMessage (application_name, search_path, options with -c
  settings) is what PostgreSQL applies, and the server's ParameterStatus messages reach the
  client as if it were connected directly.

  Scenario: runtime parameters and -c options from the connection string
    Given a PostgreSQL server
    And a proxy in front of it
    When "scram_user" connects with password "scram_pass" with "application_name=e2e-app&search_path=e2e_schema,public&options=-c%20statement_timeout%3D4321"
    Then the connection succeeds
    And the session runs "SELECT current_setting('application_name')" and gets "e2e-app"
    And the session runs "SHOW search_path" and gets "e2e_schema,public"
    And the session runs "SHOW statement_timeout" and gets "4321ms"
    And the session sees the server parameter "application_name" as "e2e-app"
    And the session sees the server parameter "server_version" starting with "15"
    And the session sees the server parameter "client_encoding" as "UTF8"
    And the session sees the server parameter "session_authorization" as "scram_user"

  Scenario: a parameter given twice is refused (PostgreSQL would log in with the last one)
    Given a PostgreSQL server
    And a proxy in front of it
    Then a raw client sending the startup parameters "user=trust_user,database=postgres,database=testdb" is refused with SQLSTATE "08P01" and a message containing "given more than once"
    And a raw client sending the startup parameters "user=someone_else,user=trust_user,database=testdb" is refused with SQLSTATE "08P01" and a message containing "given more than once"
    And a raw client sending the startup parameters "user=trust_user,database=testdb,application_name=a,application_name=b" is refused with SQLSTATE "08P01" and a message containing "given more than once"
    And the proxy is still serving new sessions
