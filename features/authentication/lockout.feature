@authentication
Feature: Repeated wrong passwords lock the account
  Guessing a patient's password must not be a matter of patience: after a few wrong passwords
  the portal refuses even the right one for a while (a lock, a throttle, growing delays or a
  CAPTCHA), without telling the guesser that the account exists or is locked.

  @auth_lockout @destructive @slow
  Scenario: An account locks after the policy's number of failures and stays locked long enough
    Given the lockout test account was given wrong passwords until it locked, and tried again later
    Then it locked within the policy's number of failures, refused the right password with an ordinary message and stayed locked for the policy's period
