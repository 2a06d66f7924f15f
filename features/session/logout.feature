@session
Feature: Signing out ends the session
  On a shared computer, signing out must really end the session: the server forgets it, the
  browser drops the cookie, and the Back button shows no patient data. A sign-out that leaves
  the session alive is the failure this control exists to find, so it does not rest on the
  preflight's own sign-out.

  @sess_logout
  Scenario: A signed-out session cannot be replayed
    Given the patient has signed in on a shared computer
    And the patient's session cookies have been captured
    When the patient signs out on the shared computer
    Then the captured session cookies no longer sign anyone in
    And the browser no longer holds the captured session cookies
    And going back in the browser shows no patient data
