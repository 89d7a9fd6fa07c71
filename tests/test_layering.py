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
        # The client ships alone (`pip install trainlab`): none of the server, nor its stack.
        ({"trainlab/c.py": "from core.settings import Settings\n"}, "trainlab may import"),
        ({"trainlab/c.py": "def f():\n    import api.schemas\n"}, "trainlab may import"),
        ({"trainlab/c.py": "import fastapi\n"}, "trainlab must not"),
        ({"trainlab/c.py": "from sqlalchemy import Engine\n"}, "trainlab must not"),
        ({"trainlab/c.py": "import celery\n"}, "trainlab must not"),
        ({"trainlab/c.py": "def f():\n    import torch\n"}, "trainlab must not"),
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
    }
    assert check.problems(_tree(tmp_path, files)) == []
