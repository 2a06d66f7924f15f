@session
Feature: Patient data is never cached
  A browser or proxy cache that keeps signed-in pages lets the next person at a shared computer
  read them.

  @hdr_cache
  Scenario: Signed-in pages and patient data are sent with no-store
    Given the patient has signed in
    When the signed-in pages and the patient data are opened
    Then every one of those responses forbids storing it
    When the patient signs out
    Then going back in the browser shows no patient data
