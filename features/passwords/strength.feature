@passwords
Feature: Password strength
  A password that a cracking tool guesses quickly protects nothing; the portal must refuse it and
  tell the patient how to choose a better one.

  @pwd_strength @destructive
  Scenario: No password below the policy strength is accepted, and guidance is shown
    Given the password test account has signed in
    When passwords across the strength scale are submitted as new passwords
    Then no accepted password scores below the policy strength and guidance is shown
