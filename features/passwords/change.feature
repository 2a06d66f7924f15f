@passwords
Feature: Changing a password
  Someone who finds a patient's browser signed in must not be able to lock the patient out by
  changing the password.

  @pwd_change @destructive
  Scenario: Changing the password needs the current password
    Given the password test account has signed in
    When the password is changed without the current password, with a wrong one and with the right one
    Then only the change with the right current password takes effect
