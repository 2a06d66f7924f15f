@session
Feature: Session cookie attributes
  The session cookie is the patient's identity for the length of a visit. It must never travel
  over plain HTTP, never be readable by page scripts, and never ride along on cross-site requests.

  @sess_cookie
  Scenario: Session cookies are Secure, HttpOnly and SameSite
    Given the patient has signed in
    When the cookies the portal set at sign-in are inspected
    Then every session cookie is Secure, HttpOnly and SameSite Lax or Strict
