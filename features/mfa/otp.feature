@mfa
Feature: One-time codes are used once, on time, and not guessed
  A code seen over a patient's shoulder must be useless once used or once old, and a guesser
  must not get enough tries to hit the right code.

  @mfa_otp @destructive
  Scenario: Used, stale and guessed codes are refused
    When the enrolled patient signs in with a fresh code, then tries the same code, a stale code and a burst of wrong codes on new sign-ins
    Then a used code, a stale code and a valid code after the burst are all refused
