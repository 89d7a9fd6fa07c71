"""A store out of space (SQLite's `max_page_count`, what a full disk gives: "database or disk
is full") answers 503 with a body that says so, stores nothing, and the same request goes
through once there is room again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from api.app import create_app
from core.store.migrate import upgrade_to_head
from core.store.tables import EXPERIMENTS
from tests.api.app_client import app_client
from tests.conftest import make_settings

NO_LIMIT = 1_073_741_823
BODY = {"preset": "seed-adam", "overrides": {"epochs": 1, "train_limit": 2000}}


def test_out_of_space_is_503_and_nothing_is_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_to_head(url)
    settings = make_settings(
        database_url=url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        state_dir=tmp_path / "state",
        trusted_hosts=["testserver"],
    )
    app = create_app(settings, lifespan_hooks=[])
    pages = [1]  # clamps to the pages in use: no page can be added

    @event.listens_for(app.state.engine, "checkout")
    def _room(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages[0]}")

    def stored() -> int:
        with app.state.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(EXPERIMENTS)).scalar())

    with app_client(app) as client:
        answers = [client.post("/experiments", json=BODY) for _ in range(40)]
        refused = [a for a in answers if a.status_code != 201]
        assert refused, "the store never ran out of space"
        assert {a.status_code for a in refused} == {503}
        assert "out of space" in refused[0].json()["detail"]
        assert refused[0].headers["retry-after"] == "30"
        assert stored() == len(answers) - len(refused)  # a refused request stored nothing
        pages[0] = NO_LIMIT
        assert client.post("/experiments", json=BODY).status_code == 201
