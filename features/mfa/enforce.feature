@mfa
Feature: The second factor is required on every path
  For a patient enrolled in two-step verification, the password alone opens nothing: every
  protected page sends the visitor back to the second factor.

  @mfa_enforce
  Scenario: Protected pages do not answer after the password alone
    Given the enrolled patient has entered the right password only
    When the protected pages are opened directly
    Then each one sends the patient back to the second factor
