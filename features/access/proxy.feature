@access
Feature: Caregivers see only the patients they were granted
  A parent, carer or other proxy may act for the patients who granted them access, and for no
  one else: another patient's records answer as if they did not exist.

  @proxy_access
  Scenario: A caregiver cannot open the records of a patient it was not granted
    Given the caregiver has signed in
    When the caregiver opens the granted patient's records and another patient's records
    Then the granted records load and every other patient's record is refused
