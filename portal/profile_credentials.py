"""The profile's sections for the flows that change an account's credentials: the second factor
and authenticator enrolment (MFA_*), password change and reset (PWD_*, SESS_PWCHANGE, RESET_*),
and the test mailbox the portal's e-mails arrive in."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, StrictBool, field_validator, model_validator

from portal.flows import Flow, RegexPattern, check_flow
from portal.profile_fields import (
    CaFile,
    ClickOrSteps,
    Host,
    Integer,
    Number,
    ProfileModel,
    StepList,
    refusal,
)
from portal.selectors import Selector


class TotpEnrolment(ProfileModel):
    """The account page where a signed-in user adds or removes an authenticator app."""

    url: str = Field(description="Page with the authenticator (TOTP) settings")
    start: ClickOrSteps = Field(
        description="Selector of the control that starts adding an authenticator, or the steps "
        "that do (the first step's selector must show only while none is active)"
    )
    reauth_password: Selector | None = Field(
        default=None,
        description="Selector of the current-password field the portal asks for before a "
        "factor changes (leave out if it asks for none: MFA_ENROLL then fails)",
    )
    reauthenticate: StepList | None = Field(
        default=None,
        description="Steps after 'start' when the portal re-authenticates on a page of its own "
        "(fill {password}, click its submit); make them optional if it may not ask",
    )
    qr_image: Selector | None = Field(default=None, description="Selector of the enrolment QR code")
    shown_key: ClickOrSteps | None = Field(
        default=None,
        description="Selector of the key (an input's value, else the element's text), or steps "
        "reading it into 'key'",
    )
    confirm_code: Selector = Field(description="Selector of the field for the confirmation code")
    confirm_submit: Selector = Field(description="Selector of the confirmation submit button")
    error: Selector | None = Field(
        default=None, description="Selector of an enrolment error message"
    )
    recovery_codes: ClickOrSteps | None = Field(
        default=None,
        description="Selector matching each recovery code shown after enrolment; with "
        "recovery_code_pattern, the one element holding them all; or steps splitting them "
        "into 'recovery_codes'",
    )
    recovery_code_pattern: RegexPattern | None = Field(
        default=None,
        description="Regular expression matching each code in the recovery_codes element",
    )
    enrolled: Selector = Field(description="Selector visible once an authenticator is active")
    remove: ClickOrSteps | None = Field(
        default=None,
        description="Selector of the control that removes the authenticator, or the steps that "
        "do (a link, a confirmation page; {password} and {code} for re-authentication)",
    )

    @field_validator("start")
    @classmethod
    def _start_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value, placeholders={"password"}, starts_with_selector=True)
        return value

    @field_validator("reauthenticate")
    @classmethod
    def _reauthenticate_flow(cls, value: Flow | None) -> Flow | None:
        check_flow(value, placeholders={"password"})
        return value

    @field_validator("shown_key")
    @classmethod
    def _key_flow(cls, value: str | Flow | None) -> str | Flow | None:
        check_flow(value, placeholders={"password"}, outputs=("key",))
        return value

    @field_validator("recovery_codes")
    @classmethod
    def _codes_flow(cls, value: str | Flow | None) -> str | Flow | None:
        check_flow(value, list_output="recovery_codes")
        return value

    @field_validator("remove")
    @classmethod
    def _remove_flow(cls, value: str | Flow | None) -> str | Flow | None:
        check_flow(value, placeholders={"password", "code"})
        return value

    @model_validator(mode="after")
    def _some_secret(self) -> TotpEnrolment:
        if not self.qr_image and not self.shown_key:
            raise ValueError("give 'qr_image' or 'shown_key' (or both): where the secret is read")
        if self.recovery_code_pattern and not isinstance(self.recovery_codes, str):
            message = (
                "'recovery_code_pattern' goes with a recovery_codes selector (the element "
                "holding the codes)"
            )
            raise refusal("enrolment", [(("recovery_code_pattern",), message)])
        return self


class SecondFactor(ProfileModel):
    """The second-factor step of sign-in (MFA_*): selectors of the one-time code form."""

    code: Selector = Field(description="Selector of the one-time code field")
    submit: Selector = Field(description="Selector of the button that submits the code")
    error: Selector | None = Field(default=None, description="Selector of a refused-code message")
    recovery_link: ClickOrSteps | None = Field(
        default=None,
        description="Selector to click to enter a recovery code instead, or the steps that "
        "open the recovery-code entry from the code form (e.g. choose an option, then submit)",
    )
    recovery_code: Selector | None = Field(
        default=None, description="Selector of the recovery field"
    )
    recovery_submit: Selector | None = Field(
        default=None, description="Selector of the button that submits a recovery code"
    )
    enrolment: TotpEnrolment | None = Field(
        default=None, description="Where an authenticator is added (MFA_ENROLL, MFA_RECOVERY)"
    )

    @field_validator("recovery_link")
    @classmethod
    def _recovery_link_flow(cls, value: str | Flow | None) -> str | Flow | None:
        check_flow(value)
        return value


class PasswordChangeForm(ProfileModel):
    """The signed-in page where a user changes their password (PWD_*, SESS_PWCHANGE)."""

    url: str = Field(description="Page with the change-password form")
    before_form: StepList | None = Field(
        default=None,
        description="Steps between opening 'url' and the form: revealing it, or re-authenticating "
        "on a page of its own ({current_password}; that counts as asking for it)",
    )
    current_password: Selector = Field(description="Selector of the current-password field")
    new_password: Selector = Field(description="Selector of the new-password field")
    confirm_password: Selector | None = Field(
        default=None, description="Selector of the field repeating the new password"
    )
    submit: ClickOrSteps = Field(
        description="Selector of the button that submits the change, or the steps that do "
        "(e.g. a confirmation dialog)"
    )

    @field_validator("before_form")
    @classmethod
    def _before_form_flow(cls, value: Flow | None) -> Flow | None:
        check_flow(value, placeholders={"current_password"})
        return value

    @field_validator("submit")
    @classmethod
    def _submit_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value, placeholders={"current_password", "new_password"})
        return value

    success: Selector = Field(description="Selector visible once the password was changed")
    error: Selector = Field(description="Selector of the message shown when the change is refused")
    guidance: Selector | None = Field(
        default=None,
        description="Selector of the password guidance shown with the form (PWD_STRENGTH); "
        "default: the refusal message",
    )


class PasswordReset(ProfileModel):
    """The forgotten-password flow: request a link, read it from the mailbox, use it."""

    request_url: str = Field(description="Page with the reset request form")
    identifier: Selector = Field(description="Selector of the username or e-mail field")
    identify_by: Literal["username", "email"] = Field(
        default="username", description="What the request form is given"
    )
    submit: ClickOrSteps = Field(
        description="Selector of the button that requests the link, or the steps that do"
    )
    requested: Selector = Field(description="Selector of the confirmation shown after a request")
    new_password: Selector = Field(description="Selector of the new-password field behind the link")
    confirm_password: Selector | None = Field(
        default=None, description="Selector of the field repeating the new password"
    )
    submit_new_password: ClickOrSteps = Field(
        description="Selector of the button setting the password, or the steps that do"
    )

    @field_validator("submit")
    @classmethod
    def _request_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value)
        return value

    @field_validator("submit_new_password")
    @classmethod
    def _set_password_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value, placeholders={"new_password"})
        return value

    success: Selector = Field(description="Selector visible once the password was reset")
    error: Selector | None = Field(default=None, description="Selector of a refused new password")
    invalid_link: Selector = Field(description="Selector shown for a used, expired or unknown link")
    mail_subject: str | None = Field(
        default=None, description="Text in the reset e-mail's subject (default: any new mail)"
    )
    link_pattern: RegexPattern | None = Field(
        default=None,
        description="Regular expression matching the reset link in the mail (default: the "
        "first link to the portal's host)",
    )
    link_lifetime_seconds: Number | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="How long the portal says a link stays valid; RESET_TOKEN waits this long "
        "(default: policy max_link_lifetime_seconds)",
    )


class Passwords(ProfileModel):
    """Password policy, change and reset (PWD_*, SESS_PWCHANGE, RESET_TOKEN, RESET_MAIL)."""

    account: str = Field(
        description="Key under accounts whose password the password checks change and restore "
        "(a dedicated test account, never the main patient)"
    )
    reset_account: str | None = Field(
        default=None,
        description="Key under accounts that RESET_TOKEN resets (its own account: the check "
        "runs alongside the others)",
    )
    mfa_enforced: StrictBool = Field(
        default=False,
        description="Every account must use MFA (then policy min_length_with_mfa applies)",
    )
    context_words: list[str] = Field(
        default=[],
        description="Portal, hospital and brand names that weak passwords are built from",
    )
    change: PasswordChangeForm
    reset: PasswordReset | None = None
    notification_subject: str | None = Field(
        default=None,
        description="Text in the subject of the 'your password was changed' e-mail (RESET_MAIL)",
    )


class Imap(ProfileModel):
    host: Host
    port: Integer = Field(default=993, ge=1, le=65535)
    username: str
    password: SecretStr = Field(description="An environment reference such as ${IMAP_PASSWORD}")
    folder: str = "INBOX"
    tls: StrictBool = Field(
        default=True, description="IMAP over TLS (port 993); false = plain IMAP"
    )
    ca_file: CaFile | None = Field(
        default=None,
        description="Extra CA to trust for the server (PEM; relative to the profile's directory)",
    )


class MailboxSettings(ProfileModel):
    """The test mailbox the portal's e-mails arrive in: a Maildir or an IMAP account."""

    maildir: str | None = Field(default=None, description="Path of a Maildir")
    imap: Imap | None = None
    wait_seconds: Number = Field(
        default=60, gt=0, le=900, description="How long to wait for an expected e-mail"
    )
    patient_data_markers: list[str] = Field(
        default=[],
        description="Text that must never appear in an e-mail: record numbers, dates of birth, "
        "diagnoses of the test patients",
    )

    @model_validator(mode="after")
    def _one_source(self) -> MailboxSettings:
        if (self.maildir is None) == (self.imap is None):
            raise ValueError("give exactly one of 'maildir' or 'imap'")
        return self
