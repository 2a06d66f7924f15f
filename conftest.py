"""The step modules for every pytest run in this repository, and the audit plugin as a fallback.

Installed (``make setup``), pytest loads ``portal.plugin`` through its ``pytest11`` entry point,
which carries that same name, so listing it here is a no-op; in a checkout without install
(or with plugin autoloading off) this line is what loads it.
"""

pytest_plugins = [
    "portal.plugin",
    "steps.common",
    "steps.session",
    "steps.transport",
    "steps.authentication",
    "steps.mfa",
    "steps.access",
    "steps.passwords",
]
