@preflight
Feature: Preflight
  The audit can only judge a portal it can use. If the test account cannot sign in and out
  with the profile as written, the whole run is inconclusive, not noncompliant.

  Scenario: The test account can sign in and sign out with the profile as written
    Given the portal answers over HTTPS
    When the patient signs in
    Then the patient is signed in
    When the patient signs out
    Then the patient is signed out
