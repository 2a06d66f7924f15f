"""Create the portal's SQLite database with the synthetic patients of ``records.py``.

Run once per start, before gunicorn, in the target's virtualenv::

    FLASK_SECURITY_TARGET_STATE=/path/to/state python -m targets.flask_security.seed

``accounts.json`` in the state directory (written by the provider, mode 0600) maps each
patient's key to its password and, for accounts enrolled in two-factor, its base32 TOTP secret.
It is deleted once read; the database keeps only Flask-Security's hashes and its encrypted TOTP
secrets.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from typing import Any

from flask_security import hash_password

from targets.flask_security.app import create_app, state_dir
from targets.flask_security.models import PatientRecord, db
from targets.flask_security.records import PATIENTS

VERSIONS_SHOWN = ("flask-security", "flask", "flask-login", "flask-wtf", "gunicorn", "zxcvbn")


def seed() -> int:
    state = state_dir()
    accounts_file = state / "accounts.json"
    accounts: dict[str, dict[str, Any]] = json.loads(accounts_file.read_text(encoding="utf-8"))
    accounts_file.unlink()
    app = create_app()
    with app.app_context():
        db.create_all()
        security = app.extensions["security"]
        datastore = security.datastore
        for patient in PATIENTS:
            secret = accounts[patient.key]
            user = datastore.create_user(
                email=patient.email,
                password=hash_password(secret["password"]),
                full_name=patient.full_name,
                active=True,
            )
            db.session.flush()
            if patient.enrolled_in_totp:
                # As Flask-Security stores an authenticator it set up itself: the passlib TOTP
                # key as JSON, encrypted with SECURITY_TOTP_SECRETS.
                totp = security.totp_factory._totp(key=secret["totp_secret"], format="base32")
                datastore.tf_set(user, "authenticator", totp_secret=totp.to_json(encrypt=True))
            db.session.add(
                PatientRecord(
                    user_id=user.id,
                    mrn=patient.mrn,
                    date_of_birth=patient.date_of_birth,
                    clinician=patient.clinician,
                    results_json=json.dumps(patient.results),
                    messages_json=json.dumps(patient.messages),
                )
            )
        datastore.commit()
    # The provider records what the portal runs on in summary.json.
    print(json.dumps({name: metadata.version(name) for name in VERSIONS_SHOWN}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(seed())
