"""resnet-gen gallery: the static page renders in headless Chromium, its diagrams load and search filters."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from resnet_gen import analyze, load_spec

NAMES = ["resnet18", "resnet50", "seresnet50", "cifar_resnet20"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from resnet_gen.gallery import build_gallery

    out = tmp_path_factory.mktemp("gallery")
    build_gallery(out, NAMES)
    return out


def _chromium(url: str, profile: Path, *extra: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is required for this test (make setup installs it: apt-get install -y chromium)"
    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    args += ["--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout


def _visible(dom: str) -> set[str]:
    sections = re.findall(r'<section class="spec" id="(\w+)"[^>]*?( hidden(?:="")?)?>', dom)
    return {name for name, hidden in sections if not hidden}


def test_page_content(site: Path) -> None:
    page = (site / "index.html").read_text()
    for name in NAMES:
        assert (site / "svg" / f"{name}.svg").read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
        report = analyze(load_spec(name))
        assert f"params {report.params:,}" in page
        for row in report.rows:
            assert f"<td>{row.params:,}</td><td>{row.macs / 1e6:,.2f}M</td>" in page
    assert 'parent: <a href="#resnet50">resnet50</a>' in page  # seresnet50 extends resnet50
    assert 'href="../seresnet50.py"' in page
    assert "reproduced: params, GMACs" in page  # resnet50 reproduces torchvision's 25,557,032 and 4.089
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_deterministic(site: Path, tmp_path: Path) -> None:
    from resnet_gen.gallery import build_gallery

    build_gallery(tmp_path, NAMES)
    for path in site.rglob("*"):
        if path.is_file():
            assert (tmp_path / path.relative_to(site)).read_bytes() == path.read_bytes(), path


def test_chromium_renders_filters_and_loads_diagrams(site: Path, tmp_path: Path) -> None:
    url = (site / "index.html").as_uri()
    dom = _chromium(url, tmp_path / "p1", "--dump-dom", "--virtual-time-budget=5000")
    assert _visible(dom) == set(NAMES)
    assert 'data-diagrams-loaded="4"' in dom
    assert ">4 shown<" in dom
    dom = _chromium(url + "?q=se-resnet", tmp_path / "p2", "--dump-dom")
    assert _visible(dom) == {"seresnet50"}
    dom = _chromium(url + "?family=resnet", tmp_path / "p3", "--dump-dom")
    assert _visible(dom) == {"resnet18", "resnet50", "cifar_resnet20"}
    shot = tmp_path / "shot.png"
    _chromium(url, tmp_path / "p4", f"--screenshot={shot}", "--window-size=1000,800")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
