"""The gallery links the analysis figures that name a spec, relative to the spec's page."""

from __future__ import annotations

import re
from pathlib import Path

from resnet_gen.gallery import build_gallery, page_link


def test_pages_link_the_figures_that_name_their_spec(tmp_path: Path) -> None:
    plots = tmp_path / "docs" / "experiments"
    plots.mkdir(parents=True)
    for name in ("gradients-cifar_plain20-cifar_resnet20", "lesion-cifar_resnet20", "degradation"):
        (plots / f"{name}.png").write_bytes(b"\x89PNG")
    index = build_gallery(tmp_path / "gallery", ["cifar_resnet20", "cifar_plain20"], plots=plots)
    links = {}
    for name in ("cifar_resnet20", "cifar_plain20"):
        page = index.parent / page_link(name)
        links[name] = re.findall(r'<a class="plot" href="([^"]+)">([^<]+)</a>', page.read_text())
        for href, _ in links[name]:
            assert (page.parent / href).resolve().is_file()
    assert [label for _, label in links["cifar_resnet20"]] == ["gradients", "lesion"]
    assert [label for _, label in links["cifar_plain20"]] == ["gradients"]
    # Without a folder of figures the pages have no plot links.
    bare = build_gallery(tmp_path / "bare", ["cifar_resnet20"])
    assert 'class="plot"' not in (bare.parent / page_link("cifar_resnet20")).read_text()
