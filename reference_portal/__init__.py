"""The bundled reference patient portal that portal-audit audits by default.

Compliant as shipped; every control's failure can be reproduced with a named weakness flag
(see :mod:`reference_portal.weaknesses`). Start it with ``python -m reference_portal serve`` or,
from Python, with :func:`reference_portal.launcher.start`.
"""

from __future__ import annotations
