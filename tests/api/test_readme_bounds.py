"""The README's accounts section lists every bound and quota a caller meets with its real
default: the table is read back and compared with Settings' defaults and the fixed bounds, and
every caller-facing bound among the settings must have a row, so neither can drift."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from api.routes.compare import MAX_RECORDS as COMPARE_RECORDS
from api.routes.predictions import MAX_RECORDS_PER_REQUEST
from core.settings import Settings
from core.spec_paths import MAX_OVERRIDES
from core.submissions import MAX_EXPERIMENTS, MAX_FACTORS, MAX_LEVELS, MAX_SEEDS, MAX_TAGS
from tests.api.app_client import AppClient

README = Path(__file__).resolve().parents[2] / "README.md"
# Settings that bound what one caller may use: every one needs a row. Workers' and the
# reaper's settings (max_attempts, max_fused_runs) are the operator's, in "Production settings".
CALLER_PREFIXES = ("quota_", "rate_limit_", "max_")
NOT_CALLER_BOUNDS = {"max_attempts", "max_fused_runs"}
ALSO_LISTED = {"poll_fresh_s", "trusted_proxies"}


def _accounts_section() -> str:
    text = README.read_text()
    start = text.index("## Accounts")
    return text[start : text.index("\n## ", start + 1)]


def _setting_rows() -> dict[str, str]:
    rows = re.findall(r"^\| `TRAINLAB_(\w+)` \| ([^|]+) \|", _accounts_section(), re.M)
    return {name.lower(): default.strip() for name, default in rows}


def _fixed_rows() -> dict[str, str]:
    section = _accounts_section()
    table = section[section.index("| bound | value |") :]
    return dict(re.findall(r"^\| ([^|`]*(?:`[^`]*`[^|`]*)*) \| (\d+) \|$", table, re.M))


def _matches(written: str, default: Any) -> bool:
    if isinstance(default, list):
        return written == ("none" if not default else ",".join(default))
    if isinstance(default, bool | str):
        return written == str(default)
    return float(written) == float(default)


def test_every_setting_row_shows_the_settings_default() -> None:
    rows = _setting_rows()
    fields = Settings.model_fields
    assert rows, "no TRAINLAB_ rows in the accounts section"
    for name, written in rows.items():
        assert name in fields, f"TRAINLAB_{name.upper()} is no setting"
        field = fields[name]
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        assert _matches(written, default), (
            f"TRAINLAB_{name.upper()}: README {written}, Settings {default}"
        )


def test_every_caller_bound_among_the_settings_has_a_row() -> None:
    bounds = {
        name
        for name in Settings.model_fields
        if name.startswith(CALLER_PREFIXES) and name not in NOT_CALLER_BOUNDS
    } | ALSO_LISTED
    missing = sorted(bounds - set(_setting_rows()))
    assert not missing, f"bounds without a row in the README's accounts table: {missing}"


def test_the_fixed_bounds_are_the_codes(client: AppClient) -> None:
    doc = client.get("/openapi.json").json()

    def most(path: str) -> int:
        (limit,) = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        return int(limit["schema"]["maximum"])

    assert most("/experiments") == most("/ablations")
    expected = {
        "experiments in one ablation (arms x seeds)": MAX_EXPERIMENTS,
        "factors of a grid ablation": MAX_FACTORS,
        "values of one factor": MAX_LEVELS,
        "seeds of one ablation": MAX_SEEDS,
        "overrides in one submission": MAX_OVERRIDES,
        "tags of one experiment": MAX_TAGS,
        "items on one page of a listing (`limit`)": most("/experiments"),
        "records in one `GET /experiments/{id}/predictions`": MAX_RECORDS_PER_REQUEST,
        "records in one `GET /compare/predictions`": COMPARE_RECORDS,
    }
    assert {k: int(v) for k, v in _fixed_rows().items()} == expected


def test_the_production_table_shows_where_the_server_listens() -> None:
    """TRAINLAB_HOST and TRAINLAB_PORT: the first settings a newcomer changes."""
    text = README.read_text()
    start = text.index("## Production settings")
    section = text[start : text.index("\n## ", start + 1)]
    rows = dict(re.findall(r"^\| `TRAINLAB_(\w+)` \| ([^|]+) \|", section, re.M))
    for name in ("HOST", "PORT"):
        default = Settings.model_fields[name.lower()].default
        assert name in rows and _matches(rows[name].strip(), default), (name, rows.get(name))
