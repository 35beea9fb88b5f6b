Feature: Tables the masking file does not name are judged before they are read (llm_inference)
  With unknown_table_behavior: llm_inference, the proxy judges every table its file does not
  name when it reads a database's catalog: the generator's detectors on the column names and a
  sample of 200 rows, and the language model on the columns they leave undecided, shown the
  shapes of the values only. A table created later is judged before its first read; a table that
  cannot be judged (the model gives no answer) is refused until it can be. A name the catalog
  has not seen makes it be read again, at most once a second per database: within that second a
  statement naming another unseen relation is refused with 55000 (try again). The model here is the
  harness's stand-in speaking Anthropic's Messages API.

  Scenario: a table the file does not name is masked as the detectors and the model judge it
    Given a model provider that calls the column "member_ref" a passport number
    And the database has a table inf_members with e-mail addresses, member references and plans
    And a proxy of its own that infers the masks of the tables its file does not name
    Then analyst reads inf_members.email of row 7 through its own proxy masked
    And analyst reads inf_members.member_ref of row 7 through its own proxy masked
    And analyst reads inf_members.plan of row 7 through its own proxy in clear
    And analyst reads customers.email of row 1 through its own proxy as "t***@example.co.za"
    And the model was asked about the column "member_ref" only, shown the shape "AAddddddd" and never "MR0"
    And its own proxy logged "tables the file does not name judged (llm_inference)"

  Scenario: a table created on the server after the catalog was read is judged before its first read
    Given a model provider that calls the column "member_ref" a passport number
    And a proxy of its own that infers the masks of the tables its file does not name
    And analyst reads customers.email of row 1 through its own proxy as "t***@example.co.za"
    When a table inf_late with e-mail addresses is created on the server directly
    Then analyst reads inf_late.contact of row 3 through its own proxy masked
    When analyst runs "SELECT * FROM inf_nowhere" through its own proxy
    Then it fails with SQLSTATE 55000
    When a second has passed
    And analyst runs "SELECT * FROM inf_nowhere" through its own proxy
    Then it fails with SQLSTATE 42P01
    When analyst runs "SELECT * FROM inf_nowhere" through its own proxy
    Then it fails with SQLSTATE 42P01

  Scenario: while the model gives no answer, a table it must judge is refused; once it answers, the table is masked
    Given a model provider that fails with HTTP 500
    And the database has a table inf_members with e-mail addresses, member references and plans
    And a proxy of its own that infers the masks of the tables its file does not name
    When analyst runs "SELECT member_ref FROM inf_members WHERE id = 7" through its own proxy
    Then it is refused with SQLSTATE 42501 and a message containing "its masks could not be inferred yet"
    When the model provider now calls the column "member_ref" a passport number
    Then within 20 seconds analyst reads inf_members.member_ref of row 7 through its own proxy masked

  Scenario: llm_inference without a language model stops start-up
    When pgproxy starts without a language model with the masking file:
      """
      version: "1.0"
      unknown_table_behavior: llm_inference
      tables: []
      """
    Then it exits with status 1
    And its output contains "unknown_table_behavior llm_inference needs a language model"
