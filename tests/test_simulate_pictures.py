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


def _luminance(colour: str) -> float:
    channels = []
    for index in (1, 3, 5):
        value = int(colour[index : index + 2], 16) / 255
        channels.append(value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _contrast(one: str, other: str) -> float:
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[Path]]:
    extension = _extension()
    return extension, extension.draw(out=tmp_path_factory.mktemp("pictures"))


def test_the_docs_pictures_are_cards_readable_on_light_and_dark_pages(
    pictures: tuple[object, list[Path]],
) -> None:
    extension, written = pictures
    names = {path.name for path in written}
    assert {
        "staircase.svg",
        "algorithms.svg",
        "shaping-policing.svg",
        "per-user.svg",
        "llm-mix.svg",
        "llm-overlap.svg",
        "windows.svg",
    } <= names
    card = extension.CARD  # type: ignore[attr-defined]
    for path in written:
        svg = path.read_text(encoding="utf-8")
        colours = _colours(svg)
        # An opaque card of its own: the same contrast on furo's light and dark pages.
        assert card.lower() in colours, path.name
        assert "#ffffff" not in colours, path.name  # no glaring white
        for colour in colours - {card.lower(), GREY.lower()}:  # GREY: the faint grid only
            assert _contrast(colour, card) >= 4.5, (path.name, colour)
    # every page that shows a picture names one that is drawn
    for page in PAGES.glob("*.md"):
        for name in re.findall(r"\]\(_generated/([\w.-]+)\)", page.read_text(encoding="utf-8")):
            assert name in names, (page.name, name)
    assert not (PAGES / "images" / "admission.svg").exists()


def _inside(box: object, outer: object, slack: float = 0.5) -> bool:
    return (
        box.x0 >= outer.x0 - slack  # type: ignore[attr-defined]
        and box.y0 >= outer.y0 - slack  # type: ignore[attr-defined]
        and box.x1 <= outer.x1 + slack  # type: ignore[attr-defined]
        and box.y1 <= outer.y1 + slack  # type: ignore[attr-defined]
    )


def test_every_picture_shows_all_its_data_and_no_legend_covers_any(
    pictures: tuple[object, list[Path]],
) -> None:
    import numpy as np

    extension, _ = pictures
    drawn = extension.DRAWN  # type: ignore[attr-defined]
    assert len(drawn) >= 6
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for name, figure in drawn:
        canvas = FigureCanvasAgg(figure)  # closed figures keep no canvas of their own
        canvas.draw()
        renderer = canvas.get_renderer()
        frame = figure.bbox
        legends = [*figure.legends, *(a.get_legend() for a in figure.axes if a.get_legend())]
        assert legends, f"{name}: no legend"
        legend_boxes = [legend.get_window_extent(renderer) for legend in legends]
        for legend, box in zip(legends, legend_boxes, strict=True):
            assert _inside(box, frame), f"{name}: legend cut off"
            labels = {text.get_text() for text in legend.get_texts()}
            drawn_labels = {
                line.get_label()
                for axes in figure.axes
                for line in axes.get_lines()
                if not line.get_label().startswith("_")
            }
            assert drawn_labels <= labels, f"{name}: not in the legend: {drawn_labels - labels}"
        for axes in figure.axes:
            x_low, x_high = sorted(axes.get_xlim())
            y_low, y_high = sorted(axes.get_ylim())
            for line in axes.get_lines():
                xs = np.asarray(line.get_xdata(), dtype=float)
                ys = np.asarray(line.get_ydata(), dtype=float)
                if line.get_transform() is not axes.transData:
                    continue  # axhline: spans the axes by construction
                where = f"{name}: {line.get_label()} ({xs.min():g}..{xs.max():g})"
                assert xs.min() >= x_low - 1e-9, f"{where} starts before the x-axis"
                assert xs.max() <= x_high + 1e-9, f"{where} runs past the x-axis ({x_high:g})"
                assert ys.min() >= y_low - 1e-9, f"{name}: {line.get_label()} below the y-axis"
                assert ys.max() <= y_high + 1e-9, f"{name}: {line.get_label()} above the y-axis"
                # no legend over any point of the line (its segments sampled finely)
                fine = np.linspace(0, 1, 20)
                points = np.concatenate(
                    [
                        np.column_stack([x0 + (x1 - x0) * fine, y0 + (y1 - y0) * fine])
                        for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:], strict=True)
                    ]
                    or [np.column_stack([xs, ys])]
                )
                shown = axes.transData.transform(points)
                for box in legend_boxes:
                    covered = (
                        (shown[:, 0] > box.x0)
                        & (shown[:, 0] < box.x1)
                        & (shown[:, 1] > box.y0)
                        & (shown[:, 1] < box.y1)
                    )
                    assert not covered.any(), f"{name}: the legend covers {line.get_label()}"
            for text in [axes.title, axes._left_title, axes.xaxis.label, axes.yaxis.label]:
                if text.get_text():
                    assert _inside(text.get_window_extent(renderer), frame), (
                        f"{name}: {text.get_text()!r} is cut off"
                    )


def test_the_shaping_picture_shows_the_whole_shaped_run(
    pictures: tuple[object, list[Path]],
) -> None:
    extension, _ = pictures
    figure = dict(extension.DRAWN)["shaping-policing.svg"]  # type: ignore[attr-defined]
    shaped = figure.axes[0]
    title = shaped.get_title(loc="left")
    admitted = int(re.search(r"(\d+) admitted", title).group(1))  # type: ignore[union-attr]
    line = next(line for line in shaped.get_lines() if line.get_label() == "admitted")
    assert max(line.get_ydata()) == admitted  # every admission of the title is drawn
    last_step = min(
        x for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True) if y == admitted
    )
    assert last_step < shaped.get_xlim()[1]


def test_the_per_user_picture_counts_in_whole_calls_and_fills_its_axis(
    pictures: tuple[object, list[Path]],
) -> None:
    extension, _ = pictures
    figure = dict(extension.DRAWN)["per-user.svg"]  # type: ignore[attr-defined]
    axes = figure.axes[0]
    ticks = [tick for tick in axes.get_yticks() if axes.get_ylim()[0] <= tick <= axes.get_ylim()[1]]
    assert all(float(tick).is_integer() for tick in ticks)
    highest = max(max(line.get_ydata()) for line in axes.get_lines())
    assert highest >= 0.85 * axes.get_ylim()[1]  # no empty band over the data


def test_plot_draws_a_summary_result_with_its_level(tmp_path: Path) -> None:
    result = simulate(Pattern("bursts", rate=8, duration=6, every=2), "4/s", burst=4, levels=0.1)
    target = tmp_path / "run.svg"
    plot(result, target, title="bursts against 4/s")
    svg = target.read_text(encoding="utf-8")
    assert "<svg" in svg
    assert "#ffffff" not in _colours(svg)
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plot(result, tmp_path / "run.pdf")


def test_the_fair_total_picture_shows_the_light_key_served_in_turn(
    pictures: tuple[object, list[Path]],
) -> None:
    extension, written = pictures
    assert "fair-total.svg" in {path.name for path in written}
    figure = dict(extension.DRAWN)["fair-total.svg"]  # type: ignore[attr-defined]
    waits = figure.axes[0]
    lines = {line.get_label(): line for line in waits.get_lines()}
    fifo = next(line for label, line in lines.items() if label.startswith("FIFO"))
    fair = next(line for label, line in lines.items() if label.startswith("fair"))
    assert max(fair.get_ydata()) <= 0.25  # the light key goes in its turn
    assert max(fifo.get_ydata()) >= 6.0  # behind the heavy key's queue
