@mfa
Feature: Recovery codes work once
  A patient who loses their phone signs in with a recovery code; each code works a single time
  and is long enough that it cannot be guessed.

  @mfa_recovery @destructive
  Scenario: A recovery code cannot be used twice
    Given the enrolment patient has signed in
    When the patient adds an authenticator app and signs in twice with the same recovery code
    Then the recovery code worked once only and the codes carry enough randomness
