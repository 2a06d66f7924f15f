"""The step modules for every pytest run in this repository, and the audit plugin and the
reference portal's target provider as a fallback.

Installed (``make setup``), pytest loads ``portal.plugin`` and ``reference_portal.audit_target``
through their ``pytest11`` entry points, which carry those same names, so listing them here is a
no-op; in a checkout without install (or with plugin autoloading off) these lines load them.
The Flask-Security target's provider (targets/, not installed) is loaded from here only.
"""

pytest_plugins = [
    "portal.plugin",
    "reference_portal.audit_target",
    "targets.flask_security.audit_target",
    "steps.common",
    "steps.session",
    "steps.session_tokens",
    "steps.transport",
    "steps.authentication",
    "steps.mfa",
    "steps.access",
    "steps.passwords",
]
