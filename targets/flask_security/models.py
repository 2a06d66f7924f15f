"""The portal's data: Flask-Security's stock fsqla (v3) user and role models, and each patient's
synthetic record."""

from __future__ import annotations

import json
from typing import Any

from flask_security.models import fsqla_v3 as fsqla
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Column, ForeignKey, Integer, String, Text

db = SQLAlchemy()
fsqla.FsModels.set_db_info(db)


class Role(db.Model, fsqla.FsRoleMixin):  # type: ignore[name-defined,misc]
    pass


class User(db.Model, fsqla.FsUserMixin):  # type: ignore[name-defined,misc]
    # The name the portal greets the patient with (Flask-Security's zxcvbn check also reads it).
    full_name = Column(String(255), nullable=True)


class WebAuthn(db.Model, fsqla.FsWebAuthnMixin):  # type: ignore[name-defined,misc]
    """Required by the v3 user model's relationship; passkeys stay switched off."""


class PatientRecord(db.Model):  # type: ignore[name-defined,misc]
    """One patient's chart: identifiers, test results and messages (JSON lists)."""

    id = Column(Integer(), primary_key=True)
    user_id = Column(Integer(), ForeignKey("user.id"), unique=True, nullable=False)
    mrn = Column(String(32), nullable=False)
    date_of_birth = Column(String(10), nullable=False)
    clinician = Column(String(255), nullable=False)
    results_json = Column(Text, nullable=False, default="[]")
    messages_json = Column(Text, nullable=False, default="[]")

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(json.loads(self.results_json or "[]"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(json.loads(self.messages_json or "[]"))
