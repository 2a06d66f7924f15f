@authentication
Feature: The portal does not reveal which accounts exist
  Whether a username belongs to a patient is itself sensitive. Sign-in and password reset must
  answer a known and an unknown account the same way: same words, same status, same time.
  The known account is given wrong passwords many times and may lock: a destructive check.

  @auth_enum @slow @destructive
  Scenario: Known and unknown accounts get the same answer
    When sign-in, and password reset where the portal has it, are tried many times for a known and an unknown account
    Then the portal answers both accounts alike in text, status and timing
