@session
Feature: Idle sessions expire on the server
  A patient who walks away from a shared computer without signing out must not leave their
  records open: the server ends a session nobody uses within the idle timeout, whatever the
  browser does.

  @sess_idle @slow
  Scenario: An idle session is ended by the server within the idle timeout
    Given the patient signed in on several browsers, left them untouched, and tried each again later
    Then the sessions idle for the timeout or longer are signed out and earlier ones are not
