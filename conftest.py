"""Loads the audit plugin and the step modules for every pytest run in this repository."""

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
