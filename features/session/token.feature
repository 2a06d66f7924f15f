@session
Feature: Session tokens stay secret and unguessable
  A session token in a URL ends up in browser history, server logs and Referer headers sent to
  other sites; a short or predictable token can be guessed.

  @sess_token
  Scenario: The session token never appears in a URL and carries enough randomness
    Given the patient's visit is being recorded
    When the patient signs in, opens every protected page and signs out
    Then no recorded URL or Referer carries the session token
    And session tokens from several sign-ins are unique and carry enough randomness
