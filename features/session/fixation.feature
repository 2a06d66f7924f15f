@session
Feature: Session fixation
  A session ID that existed before sign-in may have been seen or chosen by someone else, so
  signing in must issue a new one and the old one must stay anonymous.

  @sess_fixation
  Scenario: A pre-sign-in session ID never becomes authenticated
    Given the portal answers over HTTPS
    When the visitor signs in as the patient
    Then the session cookies after sign-in are new
    And the cookies held before signing in, replayed in a fresh browser, are not signed in

  @sess_fixation
  Scenario: A session ID planted before sign-in is not adopted
    Given an attacker has planted session cookies of their choosing in the visitor's browser
    When the visitor signs in as the patient
    Then the planted session cookies replayed in a fresh browser are not signed in
