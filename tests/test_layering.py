"""The import-graph check (.ci/check_layering.py, run by `make layering` and `make test`):
the real tree passes, and each kind of forbidden import in a small fake tree is caught."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layering", REPO / ".ci/check_layering.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layering"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check = _checker()


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in check.PACKAGES:
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


def test_the_repository_is_layered() -> None:
    assert check.problems(REPO) == []


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"api/queue.py": "def send():\n    from worker.tasks import run\n"}, "api may import"),
        ({"worker/job.py": "from api.app import create_app\n"}, "worker may import"),
        ({"core/spec.py": "import api\n"}, "core may import only no other package"),
        ({"api/predict.py": "import torch\n"}, "must not"),
        ({"worker/engine/loop.py": "from sqlalchemy import Engine\n"}, "must not"),
        ({"worker/engine/loop.py": "from core.store import models\n"}, "only the spec"),
        ({"api/a.py": "from . import b\n", "api/b.py": "from api import a\n"}, "cycle"),
        # The benchmark-only peers stay out of every package.
        ({"core/track.py": "import mlflow\n"}, "core must not"),
        ({"api/track.py": "from ray import serve\n"}, "api must not"),
        ({"worker/tune.py": "import ray.tune\n"}, "worker must not"),
        ({"cli/track.py": "import mlflow.tracking\n"}, "cli must not"),
        ({"migrations/env.py": "import ray\n"}, "migrations must not"),
        ({"api/routes/x.py": "from sqlalchemy import Engine, select\n"}, "no SQL outside"),
        ({"worker/job.py": "import sqlmodel\n"}, "no SQL outside"),
        ({"cli/x.py": "def f():\n    from sqlalchemy.orm import Query\n"}, "no SQL outside"),
        ({"api/x.py": "from core.store.tables import EXPERIMENTS\n"}, "no SQL outside"),
        # The client ships alone (`pip install trainlab`): none of the server, nor its stack.
        ({"trainlab/c.py": "from core.settings import Settings\n"}, "trainlab may import"),
        ({"trainlab/c.py": "def f():\n    import api.schemas\n"}, "trainlab may import"),
        ({"trainlab/c.py": "import fastapi\n"}, "trainlab must not"),
        ({"trainlab/c.py": "from sqlalchemy import Engine\n"}, "trainlab must not"),
        ({"trainlab/c.py": "import celery\n"}, "trainlab must not"),
        ({"trainlab/c.py": "def f():\n    import torch\n"}, "trainlab must not"),
        # Only the launcher may load the CLI, and nothing else of the server.
        ({"trainlab/_sync.py": "def f():\n    from cli import main\n"}, "trainlab may import"),
        ({"trainlab/_launch.py": "def f():\n    import core.settings\n"}, "trainlab may import"),
    ],
)
def test_forbidden_imports_are_named(tmp_path: Path, files: dict[str, str], words: str) -> None:
    found = check.problems(_tree(tmp_path, files))
    assert found, files
    assert any(words in line for line in found), found


def test_allowed_arrows_pass(tmp_path: Path) -> None:
    files = {
        "core/spec.py": "import pydantic\n",
        "api/routes.py": "from core import spec\n",
        "worker/engine/run.py": "import torch\nfrom core.spec import ExperimentSpec\n",
        "cli/main.py": "import api.routes\nimport worker.engine.run\nfrom trainlab import Client\n",
        "trainlab/__init__.py": "import httpx\nimport pydantic\n",
        # The `trainlab` command: the one arrow from the client package to the CLI.
        "trainlab/_launch.py": "def main():\n    from cli import main\n",
    }
    assert check.problems(_tree(tmp_path, files)) == []


# Each thing the services must not reach, imported the ways code does.
@pytest.mark.parametrize(
    "line",
    [
        "from fastapi import HTTPException\n",
        "from starlette.concurrency import run_in_threadpool\n",
        "from api.errors import invalid\n",
        "from api import schemas\n",
        "from api.schemas import ExperimentCreate\n",
        "from api.auth import Principal\n",
        "from api.http.etags import conditional_json\n",
        "from ..http import json_bytes\n",
        "from api.routes.events import sse_event\n",
        "import api.middleware\n",
    ],
)
def test_services_are_free_of_http(tmp_path: Path, line: str) -> None:
    found = check.problems(_tree(tmp_path, {"api/services/plan.py": line}))
    assert any("api.services must not" in f and "api/services/plan.py:1" in f for f in found), found


def test_services_may_use_core_and_each_other(tmp_path: Path) -> None:
    files = {
        "api/services/plan.py": "from core.errors import invalid\nfrom . import stats\n",
        "api/services/stats.py": "import numpy\n",
        "api/routes/plans.py": "from fastapi import APIRouter\nfrom api.services import plan\n",
    }
    assert check.problems(_tree(tmp_path, files)) == []


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"tests/core/test_a.py": "from worker.job import run\n"}, "tests/core may use only"),
        ({"tests/core/test_a.py": "import api.app\n"}, "tests/core may use only"),
        ({"tests/worker/test_a.py": "from api.services import stats\n"}, "tests/worker may use"),
        ({"tests/worker/test_a.py": "from cli import main\n"}, "tests/worker may use"),
        ({"tests/api/routes/test_a.py": "from worker.engine import run\n"}, "tests/api may use"),
        # A helper carries what it reaches: tests/api -> a helper -> worker.
        (
            {
                "tests/api/test_a.py": "from tests.integration.stack import Stack\n",
                "tests/integration/stack.py": "from worker.shutdown import kill_tree\n",
            },
            "reaches worker.shutdown",
        ),
        # The root conftest is shared by every tree: it may use only core.
        ({"tests/conftest.py": "from api.app import create_app\n"}, "tests may use only"),
        (
            {
                "tests/core/test_a.py": "from tests.helpers import x\n",
                "tests/helpers.py": "from tests.api.client import y\n",
                "tests/api/client.py": "import api.app\n",
            },
            "reaches api.app",
        ),
    ],
)
def test_tests_use_only_their_packages(tmp_path: Path, files: dict[str, str], words: str) -> None:
    found = check.problems(_tree(tmp_path, files))
    assert any(words in line for line in found), found


def test_tests_that_may_use_more_pass(tmp_path: Path) -> None:
    files = {
        "tests/conftest.py": "from core.settings import Settings\n",
        "tests/core/test_a.py": "from tests.conftest import Settings\n",
        "tests/worker/test_a.py": "from tests.core.helpers import x\nimport worker.job\n",
        "tests/core/helpers.py": "from core import store\n",
        "tests/api/test_a.py": "from tests.integration.browser import chromium\nimport api.app\n",
        "tests/integration/browser.py": "from tests.conftest import Settings\n",
        "tests/integration/test_a.py": "import api.app, worker.job, cli\n",
        "tests/cli/test_a.py": "import api.app, worker.job, cli\n",
        "bench/run.py": "import ray, mlflow\nimport api.app, worker.engine\n",
        # A named cross-check may use what it checks against.
        "tests/core/test_cost.py": "from worker.engine.model import build_model\n",
    }
    assert check.problems(_tree(tmp_path, files)) == []


def test_engine_and_session_types_and_database_errors_are_not_sql(tmp_path: Path) -> None:
    allowed = (
        "from sqlalchemy import Engine\n"
        "from sqlalchemy.exc import IntegrityError, OperationalError\n"
        "from sqlmodel import Session\n"
    )
    assert check.problems(_tree(tmp_path, {"api/routes/x.py": allowed})) == []
