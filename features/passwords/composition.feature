@passwords
Feature: No character-class rules
  Rules such as "one capital, one digit, one symbol" push people to predictable passwords; a long
  passphrase is stronger (configurable where PCI DSS requires such rules).

  @pwd_nocomposition @destructive
  Scenario: A long lower-case passphrase is accepted
    Given the password test account has signed in
    When a long passphrase of lower-case words is submitted as the new password
    Then it is accepted without character-class rules
