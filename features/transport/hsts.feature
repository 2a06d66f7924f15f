@transport
Feature: HTTP Strict Transport Security
  A browser that has seen the portal's HSTS policy never again speaks plain HTTP to it, so a
  network attacker cannot strip TLS from a patient's visit.

  @hdr_hsts
  Scenario: Every HTTPS response tells browsers to use HTTPS for at least a year
    Given the portal answers over HTTPS
    When the sign-in page, a protected page, an error page and static files are fetched
    Then every response carries HSTS with a max-age of at least the policy minimum
