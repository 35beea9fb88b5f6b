Feature: Each mask shows exactly its documented value
  With testdata/masking.yaml every mask type is in use: partial (full_name, 2 characters;
  payments.account_number, 3), email, hash (phone), hmac (national_id, MASKING_HMAC_KEY), full
  (card_number; passport_no, a varchar(9): cut to 9 characters; credit_score, an integer: NULL)
  and null (date_of_birth). The hash and the hmac are computed here with Go's crypto/sha256 and
  crypto/hmac from the clear value. NULL stays NULL. Partitions and inheritance children are
  masked as their parent is. A role in unmasked_roles sees clear values.

  Scenario Outline: <column> of <table> row <id>: <why>
    Then analyst reads <table>.<column> of row <id> through the proxy as <shown>
    And support reads <table>.<column> of row <id> through the proxy as <shown>

    Examples:
      | table         | column         | id  | shown                          | why                                          |
      | customers     | full_name      | 1   | "Th***"                        | partial keeps visible_chars characters       |
      | customers     | full_name      | 8   | "Él***"                        | partial counts characters, not bytes         |
      | customers     | full_name      | 6   | "***"                          | a value of visible_chars characters: ***     |
      | payments      | account_number | 5   | "***"                          | a value shorter than visible_chars: ***      |
      | payments      | account_number | 1   | "620***"                       | partial with 3 visible characters            |
      | customers     | email          | 1   | "t***@example.co.za"           | email keeps the first character and domain   |
      | customers     | email          | 8   | "é***@example.fr"              | the first character, not byte                |
      | customers     | email          | 6   | "***MASKED***"                 | email without @                              |
      | customers     | email          | 7   | "***MASKED***"                 | email without a local part                   |
      | customers     | email          | 5   | NULL                           | NULL stays NULL                              |
      | customers     | phone          | 1   | the sha256 of the clear value  | hash is hex SHA-256                          |
      | customers     | phone          | 8   | the sha256 of the clear value  | hash of the UTF-8 bytes                      |
      | customers     | national_id    | 1   | the hmac of the clear value    | hmac is hex HMAC-SHA-256 with the key        |
      | customers     | national_id    | 5   | the hmac of the clear value    | hmac of another row                          |
      | customers     | card_number    | 1   | "***MASKED***"                 | full                                         |
      | customers     | card_number    | 5   | NULL                           | full keeps NULL                              |
      | customers     | passport_no    | 1   | "***MASKED"                    | full cut to varchar(9)                       |
      | customers     | passport_no    | 5   | NULL                           | NULL in a varchar(9)                         |
      | customers     | date_of_birth  | 1   | NULL                           | null mask on a date                          |
      | customers     | credit_score   | 1   | NULL                           | full on an integer column gives NULL         |
      | customers     | city           | 1   | "Johannesburg"                 | an unmasked column of a masked table         |
      | vip_customers | email          | 101 | "k***@vip.example.co.za"       | the inheritance child is masked              |
      | vip_customers | full_name      | 102 | "Re***"                        | the inheritance child, partial               |
      | payments_2024 | account_number | 3   | "100***"                       | a partition is masked                        |
      | payments_2023 | card_number    | 1   | "***MASKED***"                 | another partition                            |

  Scenario: every masked value of every row is the mask of its clear value, computed in Go
    Then every masked value analyst reads from customers through the proxy is the documented mask of the clear value
    And every masked value analyst reads from payments through the proxy is the documented mask of the clear value
    And every masked value analyst reads from customers through the proxy without hmac is the documented mask of the clear value

  Scenario Outline: a role in unmasked_roles sees <column> in clear
    Then dba_lead reads customers.<column> of row <id> through the proxy as the clear value

    Examples:
      | column        | id  |
      | full_name     | 1   |
      | email         | 8   |
      | phone         | 1   |
      | national_id   | 1   |
      | card_number   | 4   |
      | passport_no   | 1   |
      | date_of_birth | 1   |
      | credit_score  | 1   |
      | email         | 101 |

  Scenario: the clear values of a role in unmasked_roles are what PostgreSQL returns
    Then dba_lead gets exactly what a direct connection returns for "SELECT * FROM customers ORDER BY id"

  Scenario: without the hmac key, national_id is masked with the hash
    Then analyst reads customers.national_id of row 1 through the proxy without hmac as the sha256 of the clear value
