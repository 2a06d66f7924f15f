@passwords
Feature: E-mails about passwords
  E-mail is not a safe place for passwords or health information, and a patient must hear about
  every change to their password.

  @reset_mail @destructive
  Scenario: Reset e-mails carry no password or patient data
    Given the test mailbox can be read
    When a password reset is requested for the password test account
    Then the reset e-mail and every other e-mail of the run carry no password or patient data

  @reset_mail @destructive
  Scenario: A password change is notified by an e-mail without the password
    Given the test mailbox can be read
    And the password test account has signed in
    When the password is changed and changed back
    Then the account holder is notified by e-mails carrying no password or patient data
