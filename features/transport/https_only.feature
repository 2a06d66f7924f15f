@transport
Feature: Credentials travel only over HTTPS
  A sign-in form served or submitted over plain HTTP hands the patient's password to anyone on
  the network.

  @auth_https
  Scenario: The sign-in form is served and submitted only over HTTPS
    Given the portal answers over HTTPS
    When the sign-in page is requested over plain HTTP
    Then the plain HTTP request is redirected to HTTPS
    And the patient's credentials are submitted only over HTTPS
