"""The audit plugin (which brings the step modules) and the reference portal's target provider
as a fallback, and the Flask-Security target's provider.

Installed (``make setup``), pytest loads ``portal.plugin`` and ``reference_portal.audit_target``
through their ``pytest11`` entry points, which carry those same names, so listing them here is a
no-op; in a checkout without install (or with plugin autoloading off) these lines load them.
The Flask-Security target's provider (targets/, not installed) is loaded from here only.
"""

pytest_plugins = [
    "portal.plugin",
    "reference_portal.audit_target",
    "targets.flask_security.audit_target",
]
