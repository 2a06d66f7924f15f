"""The reference portal's lockout, TOTP and recovery-code logic, on a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher

from reference_portal.auth import GENERIC_SIGN_IN_ERROR, Authenticator
from reference_portal.db import Database
from reference_portal.lockout import SignInGuard
from reference_portal.mfa import TOTP_PERIOD, MfaStore, totp_at
from reference_portal.records import Records
from reference_portal.seed import seed
from reference_portal.settings import LOCKOUT_THRESHOLD, PortalSettings

PASSWORD = "a long reference password for tests"
# The portal's own parameters cost tens of milliseconds a hash; these tests need no strength.
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(tmp_path / "portal.sqlite3")
    db.migrate()
    return db


@pytest.fixture
def records(database: Database) -> Records:
    authenticator = Authenticator(Records(database), CHEAP)
    seed(database, authenticator.hash_password, {"REFERENCE_LOCKOUT_PASSWORD": PASSWORD})
    return Records(database)


def _guard(database: Database, records: Records, clock: Clock, *weaknesses: str) -> SignInGuard:
    settings = PortalSettings(weaknesses=weaknesses)
    return SignInGuard(database, records, Authenticator(records, CHEAP), settings, clock=clock)


def test_the_account_locks_at_the_threshold_and_comes_back(
    database: Database, records: Records
) -> None:
    clock = Clock()
    guard = _guard(database, records, clock)
    for _ in range(LOCKOUT_THRESHOLD):
        assert guard.attempt("patient.kowalski", "wrong").error_text == GENERIC_SIGN_IN_ERROR
    locked = guard.attempt("patient.kowalski", PASSWORD)
    assert locked.account is None and locked.error_text == GENERIC_SIGN_IN_ERROR
    assert guard.attempt("nobody.at.all", "wrong").error_text == GENERIC_SIGN_IN_ERROR
    clock.now += PortalSettings().lockout_seconds + 1
    assert guard.attempt("patient.kowalski", PASSWORD).account is not None


def test_weakened_portals_never_lock_or_tell_accounts_apart(
    database: Database, records: Records
) -> None:
    guard = _guard(database, records, Clock(), "no_lockout", "enumerating_sign_in_errors")
    for _ in range(3 * LOCKOUT_THRESHOLD):
        guard.attempt("patient.kowalski", "wrong")
    assert guard.attempt("patient.kowalski", PASSWORD).account is not None
    known = guard.attempt("patient.kowalski", "wrong").error_text
    assert known != guard.attempt("nobody.at.all", "wrong").error_text


def _enrolled(database: Database, records: Records, clock: Clock, *weak: str) -> MfaStore:
    store = MfaStore(database, PortalSettings(weaknesses=weak), clock=clock)
    account = records.credentials_by_username("patient.haddad")
    assert account is not None
    return store


def test_codes_are_accepted_once_within_one_step_of_drift(
    database: Database, records: Records
) -> None:
    clock = Clock()
    store = _enrolled(database, records, clock)
    account = records.credentials_by_username("patient.haddad")
    assert account is not None
    account_id = account[0].id
    secret = pyotp.random_base32(32)
    store.install(account_id, secret)
    step = int(clock.now // TOTP_PERIOD)
    assert totp_at(secret, step) == pyotp.TOTP(secret).at(clock.now)
    assert store.verify_code(account_id, totp_at(secret, step))
    assert not store.verify_code(account_id, totp_at(secret, step)), "replay"
    assert not store.verify_code(account_id, totp_at(secret, step - 3)), "stale"
    assert store.verify_code(account_id, totp_at(secret, step + 1)), "one step of drift"


def test_enrolment_needs_a_valid_code_and_recovery_codes_work_once(
    database: Database, records: Records
) -> None:
    clock = Clock()
    store = _enrolled(database, records, clock)
    account = records.credentials_by_username("patient.haddad")
    assert account is not None
    account_id = account[0].id
    secret = store.begin_enrolment(account_id)
    assert len(secret) == 32
    assert not store.required_for(account[0])
    assert store.confirm_enrolment(account_id, "000000") is None
    codes = store.confirm_enrolment(account_id, totp_at(secret, int(clock.now // TOTP_PERIOD)))
    assert codes is not None and len(codes) == 10
    assert store.required_for(account[0])
    assert store.use_recovery_code(account_id, codes[0].lower())
    assert not store.use_recovery_code(account_id, codes[0])


def test_weak_enrolment_is_active_at_once_and_short(database: Database, records: Records) -> None:
    store = _enrolled(database, records, Clock(), "short_totp_secret", "totp_enrolment_unconfirmed")
    account = records.credentials_by_username("patient.haddad")
    assert account is not None
    secret = store.begin_enrolment(account[0].id)
    assert len(secret) == 16
    assert store.required_for(account[0])
    assert store.confirm_enrolment(account[0].id, "000000") is not None
