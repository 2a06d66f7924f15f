@passwords
Feature: Password length
  Length is what makes a password hard to guess. The portal must refuse passwords shorter than
  the minimum, welcome long passphrases in any language, and never quietly cut a password short.

  @pwd_length @destructive
  Scenario: Short passwords are refused; long and Unicode ones are accepted in full
    Given the password test account has signed in
    When passwords around the minimum length, long passphrases and Unicode are submitted
    Then only the password below the minimum is refused and none is truncated
