from __future__ import annotations

from reference_portal.cli import main

raise SystemExit(main())
