@passwords
Feature: Password reset links
  A reset link is a key to the account: it must be unguessable, work once, expire soon, and never
  travel to another site in a Referer header.

  @reset_token @destructive @slow
  Scenario: Reset links are single-use, expire and never leak in a Referer
    Given the reset test account's e-mailed reset links were followed
    When each link was used, used again and tried after its lifetime
    Then each link worked once, expired in time and never left the portal in a Referer
