@transport
Feature: TLS configuration
  Everything a patient sends and receives travels over the portal's TLS endpoint. It must offer
  only the protocols, cipher suites and groups of the selected Mozilla Server Side TLS 6.0
  profile, present a sound certificate, and resist the known attacks. The endpoint is scanned
  once per run; each control judges that one scan.

  Background:
    Given the portal's TLS endpoint has been scanned

  @tls_protocols
  Scenario: Only the TLS versions of the selected Mozilla profile are offered
    Then only the protocol versions of the selected Mozilla profile are offered

  @tls_ciphers
  Scenario: Only the cipher suites and groups of the selected Mozilla profile are accepted
    Then only the cipher suites and key exchange groups of the selected Mozilla profile are accepted

  @tls_cert
  Scenario: The certificate is trusted, names the portal and uses strong keys
    Then the certificate chain is trusted, matches the host name and is within its lifetime rules
    And the certificate's key and signature are strong enough

  @tls_vulns
  Scenario: The TLS endpoint resists the known attacks
    Then the endpoint is not vulnerable to Heartbleed, ROBOT, CCS injection, insecure renegotiation or compression, and supports fallback protection

  @tls_ocsp
  Scenario: A certificate that names an OCSP responder comes with a stapled response
    Then a valid OCSP response is stapled when the certificate names a responder
