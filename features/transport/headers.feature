@transport
Feature: Security headers of every page
  Browsers can only protect a patient's session from injected scripts, clickjacking, content
  sniffing and leaking URLs to other sites when the portal asks them to.

  @hdr_csp
  Scenario: A content security policy stops plugins, base-URL tricks and framing
    Given the portal answers over HTTPS
    When the sign-in page, a protected page, an error page and static files are fetched
    Then every page carries a content security policy with object-src none, a restricted base-uri and frame-ancestors
    And a page of another site cannot show the sign-in page in a frame

  @hdr_misc
  Scenario: Content sniffing is off and URLs are not leaked to other sites
    Given the portal answers over HTTPS
    When the sign-in page, a protected page, an error page and static files are fetched
    Then every response turns content sniffing off and pages send a strict referrer policy
