"""The documentation's pictures: drawn by limitor.simulate, readable on light and dark pages."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from limitor.simulation import GREY, Pattern, plot, simulate

EXTENSION = Path(__file__).resolve().parent.parent / "docs" / "_ext" / "limitor_pictures.py"
PAGES = Path(__file__).resolve().parent.parent / "docs"


def _extension():
    spec = importlib.util.spec_from_file_location("limitor_pictures", EXTENSION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _colours(svg: str) -> set[str]:
    return {
        colour.lower() for colour in re.findall(r"(?:fill|stroke)[:=]\s*\"?(#[0-9a-fA-F]{6})", svg)
    }


def test_the_docs_pictures_are_drawn_with_no_background_and_grey_text(tmp_path: Path) -> None:
    written = _extension().draw(out=tmp_path)
    names = {path.name for path in written}
    assert names == {
        "staircase.svg",
        "algorithms.svg",
        "shaping-policing.svg",
        "per-user.svg",
        "llm-mix.svg",
        "llm-overlap.svg",
    }
    for path in written:
        svg = path.read_text(encoding="utf-8")
        colours = _colours(svg)
        assert "#ffffff" not in colours, path.name  # no white background to glare in dark mode
        assert "#000000" not in colours, path.name  # no black text to vanish in dark mode
        assert GREY.lower() in colours, path.name
    # every page that shows a picture names one that is drawn
    for page in PAGES.glob("*.md"):
        for name in re.findall(r"\]\(_generated/([\w.-]+)\)", page.read_text(encoding="utf-8")):
            assert name in names, (page.name, name)
    assert not (PAGES / "images" / "admission.svg").exists()


def test_plot_draws_a_summary_result_with_its_level(tmp_path: Path) -> None:
    result = simulate(Pattern("bursts", rate=8, duration=6, every=2), "4/s", burst=4, levels=0.1)
    target = tmp_path / "run.svg"
    plot(result, target, title="bursts against 4/s")
    svg = target.read_text(encoding="utf-8")
    assert "<svg" in svg
    assert "#ffffff" not in _colours(svg)
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plot(result, tmp_path / "run.pdf")
