@session
Feature: A password change ends other sessions
  A patient changes their password because they fear someone else knows it; that someone must
  not stay signed in.

  @sess_pwchange @destructive
  Scenario: Other sessions end when the password changes
    Given the password test account has signed in
    And the password test account has also signed in on a second browser
    When the password is changed on the first browser
    Then the second browser is signed out by the password change
