@mfa
Feature: Adding an authenticator app is safe
  A patient adds an authenticator app after proving who they are again; the app's secret is long
  enough, and only a valid code from the app turns it on.

  @mfa_enroll @destructive
  Scenario: An authenticator is enrolled with a strong secret and a valid confirmation code
    Given the enrolment patient has signed in
    When the patient adds an authenticator app, confirming it first with a wrong code and then with a valid one
    Then the secret is long enough and only a valid code, after re-authentication, completed the enrolment
