"""The gallery links the analysis figures that name a spec, relative to the page."""

from __future__ import annotations

import re
from pathlib import Path

from resnet_gen.gallery import build_gallery


def test_cards_link_the_figures_that_name_their_spec(tmp_path: Path) -> None:
    plots = tmp_path / "docs" / "experiments"
    plots.mkdir(parents=True)
    for name in ("gradients-cifar_plain20-cifar_resnet20", "lesion-cifar_resnet20", "degradation"):
        (plots / f"{name}.png").write_bytes(b"\x89PNG")
    index = build_gallery(tmp_path / "gallery", ["cifar_resnet20", "cifar_plain20"], plots=plots)
    page = index.read_text()
    links = {}
    for section in re.findall(r'<section class="spec" id="([^"]+)".*?</section>', page, flags=re.S):
        body = page[page.index(f'id="{section}"') :].split("</section>", 1)[0]
        links[section] = re.findall(r'<a class="plot" href="([^"]+)">([^<]+)</a>', body)
    assert [label for _, label in links["cifar_resnet20"]] == ["gradients", "lesion"]
    assert [label for _, label in links["cifar_plain20"]] == ["gradients"]
    for href, _ in links["cifar_resnet20"]:
        assert (index.parent / href).resolve().is_file()
    # Without a folder of figures the cards have no plot links.
    assert 'class="plot"' not in build_gallery(tmp_path / "bare", ["cifar_resnet20"]).read_text()
