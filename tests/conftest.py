import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="session")
def _float_run_cache(tmp_path_factory):
    """The float-run cache of the tests' own (validate.float_runs), not the user's: every command a
    test runs, in this process or a subprocess, writes there."""
    os.environ["S2EMU_CACHE_DIR"] = str(tmp_path_factory.mktemp("float-runs"))
    yield

#: public golden data kept with the tests (see data/README.md); a missing file fails, never skips
GOLDEN = Path(__file__).resolve().parent / "data"

# CI runs every example set at the size that fits its time budget; locally the same.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def plotly_figures(html: str) -> int:
    """How many plotly figures a report draws; fails when it fetches anything or embeds plotly twice."""
    assert "http://" not in html.split("<script>", 1)[0] and 'src="http' not in html, "the report fetches something"
    assert html.count("Plotly.newPlot(") == html.count('<div class="plot"')
    assert html.count("<script>/**") <= 1, "plotly embedded more than once"
    return html.count("Plotly.newPlot(")


@pytest.fixture(scope="session")
def chrome():
    """Headless Chromium for looking at reports (tests/browser.py); skipped outside CI without it."""
    from browser import open_browser

    driver = open_browser()
    yield driver
    driver.quit()
