"""Where the tests find the repository and the shared references: from this file's place, never a
machine path, so a clone in any folder passes. `../shared` beside the clone is where CI and every
developer have it; HARBOR_CACHE_SHARED_DIR or HARBOR_CACHE_REFERENCE_DIR point elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
FILES = ROOT / "files"
SHARED = Path(os.environ.get("HARBOR_CACHE_SHARED_DIR", ROOT.parent / "shared"))
REFERENCE = Path(os.environ.get("HARBOR_CACHE_REFERENCE_DIR", SHARED / "reference"))
TOOLS = SHARED / "tools"
