@session
Feature: Signing out ends the session
  On a shared computer, signing out must really end the session: the server forgets it, the
  browser drops the cookie, and the Back button shows no patient data.

  @sess_logout
  Scenario: A signed-out session cannot be replayed
    Given the patient has signed in
    And the patient's session cookies have been captured
    When the patient signs out
    Then the captured session cookies no longer sign anyone in
    And the browser no longer holds the captured session cookies
    And going back in the browser shows no patient data
