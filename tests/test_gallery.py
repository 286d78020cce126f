"""resnet-gen gallery: the overview grid and each spec's page render in headless Chromium, their
diagrams load, search ranks a spec's own name first and filters, and every link (thumbnail, page,
diagrams, emitted source, parent, children) leads to a file inside the written site."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from click.testing import CliRunner
from conftest import VENV_BIN, cli_env

from resnet_gen import analyze, emit, load_spec
from resnet_gen.cli import cli

NAMES = ["resnet18", "resnet50", "seresnet50", "cifar_resnet20", "cifar_resnet56"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from resnet_gen.gallery import build_gallery

    out = tmp_path_factory.mktemp("gallery")
    build_gallery(out, NAMES)
    return out


def _chromium(url: str, profile: Path, *extra: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is required for this test (make test installs it: apt-get install -y chromium)"
    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    args += ["--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout


def _visible(dom: str) -> list[str]:
    """Names of the cards shown, in the order the grid places them (CSS order, then the page's)."""
    cards = re.findall(r'<article class="card" id="(\w+)"([^>]*)>', dom)
    shown = []
    for position, (name, attrs) in enumerate(cards):
        if re.search(r"\shidden(=\"\")?", attrs):
            continue
        order = re.search(r"order: (\d+)", attrs)
        shown.append((int(order.group(1)) if order else 0, position, name))
    return [name for _, _, name in sorted(shown)]


def test_overview_and_spec_pages_show_the_numbers(site: Path) -> None:
    index = (site / "index.html").read_text()
    for name in NAMES:
        assert (site / "svg" / f"{name}.svg").read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
        assert (site / "svg" / f"{name}-blocks.svg").read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
        report = analyze(load_spec(name))
        assert f"{report.params:,} params &middot; {report.macs / 1e9:.3f} GMACs" in index
        page = (site / "pages" / f"{name}.html").read_text()
        for row in report.rows:
            assert f"<td>{row.params:,}</td><td>{row.macs / 1e6:,.2f}M</td>" in page
    seresnet = (site / "pages" / "seresnet50.html").read_text()
    assert '<dt>parent</dt><dd><a href="resnet50.html">resnet50</a></dd>' in seresnet
    resnet50 = (site / "pages" / "resnet50.html").read_text()
    assert '<dt>children</dt><dd><a href="seresnet50.html">seresnet50</a></dd>' in resnet50
    assert "reproduced: params, GMACs" in resnet50  # torchvision's 25,557,032 and 4.089
    # The page shows the emitted source, escaped.
    shown_code = resnet50.split("<pre><code>", 1)[1].split("</code></pre>", 1)[0]
    assert html.unescape(shown_code) == emit(load_spec("resnet50"), "specs/resnet50.yaml")
    for text in [index, seresnet, resnet50]:
        assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text


def test_deterministic(site: Path, tmp_path: Path) -> None:
    from resnet_gen.gallery import build_gallery

    build_gallery(tmp_path, NAMES)
    for path in site.rglob("*"):
        if path.is_file():
            assert (tmp_path / path.relative_to(site)).read_bytes() == path.read_bytes(), path


def test_chromium_overview_filters_searches_and_loads_thumbnails(site: Path, tmp_path: Path) -> None:
    url = (site / "index.html").as_uri()
    dom = _chromium(url, tmp_path / "p1", "--dump-dom", "--virtual-time-budget=5000")
    assert sorted(_visible(dom)) == sorted(NAMES)
    assert f'data-diagrams-loaded="{len(NAMES)}"' in dom and f">{len(NAMES)} shown<" in dom
    dom = _chromium(url + "?q=se-resnet", tmp_path / "p2", "--dump-dom")
    assert _visible(dom) == ["seresnet50"]
    dom = _chromium(url + "?family=resnet", tmp_path / "p3", "--dump-dom")
    assert sorted(_visible(dom)) == sorted(["resnet18", "resnet50", "cifar_resnet20", "cifar_resnet56"])
    # A child does not match its parent's name (cifar_resnet56 extends cifar_resnet20) ...
    dom = _chromium(url + "?q=cifar_resnet20", tmp_path / "p4", "--dump-dom")
    assert _visible(dom) == ["cifar_resnet20"]
    # ... and the spec's own name ranks first: resnet50 before seresnet50, whose name contains it.
    dom = _chromium(url + "?q=resnet50", tmp_path / "p5", "--dump-dom")
    assert _visible(dom) == ["resnet50", "seresnet50"]
    shot = tmp_path / "index.png"
    _chromium(url, tmp_path / "p6", f"--screenshot={shot}", "--window-size=1280,900", "--virtual-time-budget=5000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_chromium_spec_page_loads_both_diagrams_and_its_source(site: Path, tmp_path: Path) -> None:
    page = site / "pages" / "seresnet50.html"
    dom = _chromium(page.as_uri(), tmp_path / "p1", "--dump-dom", "--virtual-time-budget=5000")
    assert 'data-diagrams-loaded="2"' in dom
    links = _links(dom)
    shown = _chromium(urljoin(page.as_uri(), links["emitted source"]), tmp_path / "p2", "--dump-dom")
    assert "# @generated by resnet-gen" in shown and "def seresnet50(" in shown
    shot = tmp_path / "page.png"
    _chromium(page.as_uri(), tmp_path / "p3", f"--screenshot={shot}", "--window-size=1280,1400")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


class _CardLinks(HTMLParser):
    """Each overview card's links: card id -> {link text or the image's alt: href or src}."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, dict[str, str]] = {}
        self.card: dict[str, str] | None = None
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "article" and "card" in found.get("class", "").split():
            self.card = self.cards.setdefault(found["id"], {})
        elif self.card is not None and tag == "img":
            self.card[found["alt"]] = found["src"]
            if self.href is not None:
                self.card[f"{found['alt']} link"] = self.href
        elif self.card is not None and tag == "a":
            self.href = found["href"]

    def handle_data(self, data: str) -> None:
        if self.card is not None and self.href is not None and data.strip():
            self.card[data.strip()] = self.href

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self.href = None
        elif tag == "article":
            self.card = None


def _cards(page: str) -> dict[str, dict[str, str]]:
    parser = _CardLinks()
    parser.feed(page)
    return parser.cards


def _links(page: str) -> dict[str, str]:
    """Every link and image on a page: link text or image alt -> href or src."""
    parser = _CardLinks()
    parser.card = {}
    parser.feed(page)
    return parser.card


def _target(page: Path, href: str) -> Path:
    """The file a relative link in ``page`` points at, resolved as a browser does."""
    resolved = urlsplit(urljoin(page.resolve().as_uri(), href))
    assert resolved.scheme == "file" and not resolved.fragment, href
    return Path(unquote(resolved.path))


def test_every_link_leads_to_a_file_inside_the_site(site: Path) -> None:
    index = site / "index.html"
    cards = _cards(index.read_text())
    assert set(cards) == set(NAMES)
    for name, links in cards.items():
        # The thumbnail and the name both open the spec's page.
        assert links[f"{name} macro diagram link"] == links[name] == f"pages/{name}.html"
        assert _target(index, links[f"{name} macro diagram"]).is_file()
        page = _target(index, links[name])
        assert page.is_file() and page.is_relative_to(site.resolve())  # the folder can be moved as it is
        page_links = _links(page.read_text())
        for text, href in page_links.items():
            target = _target(page, href)
            assert target.is_file() and target.is_relative_to(site.resolve()), f"{name}: {text} -> {href}"
        # The linked source is what `resnet-gen build NAME` writes for that spec.
        built = CliRunner().invoke(cli, ["build", name, "--stdout"])
        assert built.exit_code == 0, built.output
        assert _target(page, page_links["emitted source"]).read_text() == built.output
    assert sorted(p.name for p in (site / "src").iterdir()) == sorted(f"{name}.py" for name in NAMES)


def test_parent_outside_the_gallery_is_named_not_linked(tmp_path: Path) -> None:
    from resnet_gen.gallery import build_gallery

    build_gallery(tmp_path, ["seresnet50"])
    page = (tmp_path / "pages" / "seresnet50.html").read_text()
    assert "<dt>parent</dt><dd>resnet50</dd>" in page and "resnet50" not in _links(page)


def test_gallery_command_writes_the_users_specs_into_out(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mine.yaml").write_text("extends: resnet18\ndescription: Mine.\n")
    done = subprocess.run(
        [str(VENV_BIN / "resnet-gen"), "gallery"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote out/gallery/index.html (1 specs)\n"
    cards = _cards((tmp_path / "out/gallery/index.html").read_text())
    assert list(cards) == ["mine"]
    page = (tmp_path / "out/gallery/pages/mine.html").read_text()
    assert "<dt>parent</dt><dd>resnet18</dd>" in page  # the catalog parent is not in this gallery


def test_a_second_run_replaces_its_own_pages_and_keeps_a_hand_written_one(tmp_path: Path) -> None:
    """Re-running the gallery into its folder after a spec changed rewrites what it wrote (each
    page carries the gallery's generator tag); a page someone wrote by hand stops the run before
    any file changes."""
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "mine.yaml"
    spec.write_text("extends: resnet18\ndescription: Mine.\n")

    def run() -> subprocess.CompletedProcess[str]:
        command = [str(VENV_BIN / "resnet-gen"), "gallery"]
        return subprocess.run(command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True)

    assert run().returncode == 0
    spec.write_text(
        "extends: resnet18\ndescription: Mine, with a deeper first stage.\nstages:\n  - {blocks: 3, width: 64}\n"
    )
    done = run()
    assert done.returncode == 0, done.stderr
    page = tmp_path / "out/gallery/pages/mine.html"
    assert "Mine, with a deeper first stage." in page.read_text()
    index = (tmp_path / "out/gallery/index.html").read_bytes()
    page.write_text("<!DOCTYPE html><html><body>my notes</body></html>\n")
    spec.write_text("extends: resnet18\ndescription: Mine again.\n")
    done = run()
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: out/gallery/pages/mine.html: exists and was not written by resnet-gen")
    assert page.read_text() == "<!DOCTYPE html><html><body>my notes</body></html>\n"
    assert (tmp_path / "out/gallery/index.html").read_bytes() == index
