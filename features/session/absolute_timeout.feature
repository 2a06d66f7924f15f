@session
Feature: Sessions have an absolute lifetime
  Even a session in constant use must end some hours after sign-in, so a stolen session cannot
  be kept alive forever.

  @sess_abs @slow
  Scenario: A session kept busy still ends within the absolute timeout
    Given the patient signed in and kept the session busy past the absolute timeout
    Then the session was signed out within the absolute timeout of signing in
