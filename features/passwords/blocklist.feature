@passwords
Feature: Breached and guessable passwords
  Attackers try breached passwords and ones built from the user's and the portal's names first,
  whatever a strength meter says about them.

  @pwd_blocklist @destructive
  Scenario: Common, breached and context-derived passwords are refused
    Given the password test account has signed in
    When common, breached and context-derived passwords are submitted as new passwords
    Then every one of them is refused
