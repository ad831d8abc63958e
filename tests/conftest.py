import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

#: public golden data kept with the tests (see data/README.md); a missing file fails, never skips
GOLDEN = Path(__file__).resolve().parent / "data"

# CI runs every example set at the size that fits its time budget; locally the same.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
