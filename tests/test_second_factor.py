"""TOTP codes for the second factor: pyotp's, also for the short secrets pyotp refuses; the
secret as portals show it (groups separated by spaces or dashes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

import pyotp
import pytest

from portal.second_factor import (
    TOTP_PERIOD,
    AnySecretTOTP,
    EnrolmentOffer,
    base32_key,
    secret_of,
    totp_at,
)


def written_out_totp(secret: str, step: int, digits: int = 6) -> str:
    """The computation ``totp_at`` had before it used pyotp, kept as the reference."""
    cleaned = "".join(secret.split()).upper().rstrip("=")
    key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**digits:0{digits}d}"


SECRETS = [
    "JBSWY3DPEHPK3PXP",  # 80 bits: a portal issuing short secrets
    "JBSWY3DP",  # 40 bits
    "MZXW6===",  # padded, 25 bits
    "jbsw y3dp ehpk 3pxp",  # as a portal may show it: lower case, in groups
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",  # 160 bits
    pyotp.random_base32(32),
]
TIMES = [0, 59, 1_111_111_109, 1_234_567_890, 2_000_000_000, 20_000_000_000]


@pytest.mark.parametrize("secret", SECRETS)
def test_codes_are_those_of_the_written_out_computation(secret: str) -> None:
    for when in TIMES:
        step = when // TOTP_PERIOD
        assert totp_at(secret, step) == written_out_totp(secret, step), (secret, when)


def test_pyotp_itself_refuses_the_short_secret_the_subclass_accepts() -> None:
    with pytest.raises(ValueError, match="at least 112 bits"):
        pyotp.TOTP("JBSWY3DPEHPK3PXP")
    assert AnySecretTOTP("JBSWY3DPEHPK3PXP").at(59) == written_out_totp("JBSWY3DPEHPK3PXP", 1)


def test_long_secrets_get_pyotp_s_own_codes() -> None:
    secret = pyotp.random_base32(32)
    for when in TIMES:
        assert totp_at(secret, when // TOTP_PERIOD) == pyotp.TOTP(secret).at(when)


@pytest.mark.parametrize(
    ("when", "code"),
    [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ],
)
def test_rfc_6238_sha1_vectors(when: int, code: str) -> None:
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp_at(secret, when // TOTP_PERIOD, digits=8) == code


# Flask-Security's shown key (passlib's pretty_key): groups of four separated by dashes.
FLASK_SECURITY_KEY = "PYHY-DMEW-WJLE-6KPX-QG3T-5R2C-NMAZ-LJ4F"
SECRET = "PYHYDMEWWJLE6KPXQG3T5R2CNMAZLJ4F"


@pytest.mark.parametrize(
    "shown",
    [
        FLASK_SECURITY_KEY,
        FLASK_SECURITY_KEY.lower(),
        " ".join(FLASK_SECURITY_KEY.split("-")),
        "pyhy dmew-wjle 6kpx\nqg3t-5r2c nmaz-lj4f",
    ],
)
def test_a_shown_key_in_groups_is_the_qr_code_s_secret(shown: str) -> None:
    uri = f"otpauth://totp/Clinic:layla?secret={SECRET}&issuer=Clinic"
    assert base32_key(shown) == SECRET
    assert secret_of(EnrolmentOffer(False, None, shown)) == SECRET
    # What steps/mfa.py compares: the QR code's secret with the key's alone.
    assert secret_of(EnrolmentOffer(False, uri, shown)) == secret_of(
        EnrolmentOffer(False, None, shown)
    )
    assert totp_at(shown, 1_234_567) == totp_at(SECRET, 1_234_567)


def test_a_different_key_still_disagrees_with_the_qr_code() -> None:
    uri = f"otpauth://totp/Clinic:layla?secret={SECRET}&issuer=Clinic"
    other = "PYHY-DMEW-WJLE-6KPX-QG3T-5R2C-NMAZ-LJ4G"
    assert secret_of(EnrolmentOffer(False, uri, other)) != secret_of(
        EnrolmentOffer(False, None, other)
    )
