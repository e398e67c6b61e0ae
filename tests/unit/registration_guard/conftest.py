"""The registration guard is two standard-library modules, not a workspace package: import them from their folder."""

from __future__ import annotations

import sys
from pathlib import Path

SERVICE = str(Path(__file__).resolve().parents[3] / "services" / "registration-guard")
if SERVICE not in sys.path:
    sys.path.insert(0, SERVICE)
