"""The dashboard page, its static files and the test images it shows, served by the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from api.routes.dashboard import STATIC_DIR
from core.settings import Settings
from tests.api.app_client import AppClient, app_client


@pytest.fixture
def with_mnist(settings: Settings, mnist_dir: Path) -> Iterator[AppClient]:
    with app_client(
        create_app(settings.model_copy(update={"data_dir": mnist_dir}), lifespan_hooks=[])
    ) as api:
        yield api


def test_the_page_and_its_scripts_are_served(client: AppClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ('id="curves"', 'id="digit"', 'id="bars"', 'id="summary"', 'id="smoothing"'):
        assert element in page.text
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        asset = client.get(src)
        assert asset.status_code == 200, src
        assert asset.headers["content-type"].split(";")[0] in (
            "text/javascript",
            "text/css",
            "image/svg+xml",
        )


def test_nothing_is_loaded_from_elsewhere() -> None:
    """No CDN at run time: no static file names an outside address."""
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text()
            assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), path


def test_static_files_stay_inside_the_static_folder(client: AppClient) -> None:
    for path in ("/static/../main.py", "/static/%2e%2e/main.py", "/static/nope.js", "/static/"):
        assert client.get(path).status_code == 404, path


def test_record_pixels_and_png(with_mnist: AppClient) -> None:
    client = with_mnist
    found = client.get("/datasets/mnist/records/19").json()
    assert found["label"] == 4 and len(found["pixels"]) == 28 and len(found["pixels"][0]) == 28
    image = client.get("/datasets/mnist/records/19/image.png")
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_record_refusals(with_mnist: AppClient) -> None:
    client = with_mnist
    unknown = client.get("/datasets/cifar/records/1")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "name"
    beyond = client.get("/datasets/mnist/records/10000")
    assert beyond.status_code == 422 and beyond.json()["errors"][0]["field"] == "index"
    missing = client.get("/datasets/fashion-mnist/records/1")
    assert missing.status_code == 404 and "not available" in missing.json()["detail"]


def test_every_module_import_resolves(client: AppClient) -> None:
    """The page loads one module; each module's imports are files the server serves."""
    for path in STATIC_DIR.glob("*.js"):
        for target in re.findall(r'from "\./([a-z0-9_-]+\.js)"', path.read_text()):
            assert (STATIC_DIR / target).exists(), (path.name, target)
            assert client.get(f"/static/{target}").status_code == 200


def test_no_inline_scripts_styles_or_eval() -> None:
    """The page must run under a strict Content-Security-Policy (script-src/style-src 'self'):
    no inline <script> or <style>, no style= or on...= attributes in the HTML or in markup
    the scripts build, no eval or Function constructors."""
    page = (STATIC_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "<style" not in page
    for path in STATIC_DIR.glob("*"):
        if path.suffix not in (".html", ".js"):
            continue
        text = path.read_text()
        assert not re.search(r"""\sstyle\s*=\s*["'`$]""", text), path.name
        assert not re.search(r"""\son[a-z]+\s*=\s*["'`]""", text), path.name
        assert not re.search(r"\beval\s*\(|new\s+Function\s*\(|\binnerHTML\b", text), path.name
