@session
Feature: Seeing and ending other sessions
  A patient who suspects someone else is using their account must be able to see where they
  are signed in, recent sign-ins, and end every other session.

  @sess_revoke
  Scenario: The patient can see their sessions and end the others
    Given the patient has signed in on two browsers
    When the patient opens the list of active sessions on the first browser
    Then both sessions and the recent sign-ins are listed
    When the patient ends all other sessions from the first browser
    Then the second browser is signed out
