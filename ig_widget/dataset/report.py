"""The audit report: one self-contained HTML page about a dataset's store.

``DatasetResult.report(path)`` writes what was run (the recorded options,
the versions, the model's digest), the completeness error's distribution,
the faithfulness columns' summaries, the worst images by any column, the
mean map of each class, and a section for every finding given
(``ig_widget.report_section``: a comparison of two stores, clusters, a
sanity check, ...).

The page works offline: its styles are inline, its pictures PNG data URIs,
and it has no script. Pictures are the store's thumbnails (at most
``THUMBNAIL_SIDE`` pixels a side), and only a fixed number of them (the
worst ``worst`` per column, ``MAX_CLASS_MAPS`` classes), so the page's size
does not grow with the number of images. The per-class maps are read from
the store one chunk at a time. Every text from a model or a user (class
names, file names, a section's titles and cells) is escaped and isolated
(``isolated``), so it is shown as text and its direction reaches nothing
around it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..explainers import REGISTRY
from ..export import HTML_SUFFIXES, write_file
from ..options import check_class_names
from ..render import (
    MEANINGS,
    colour_name,
    format_number,
    format_percent,
    polarity_colors,
    render_maps,
    validate_render_options,
)
from ..report_section import Picture, ReportSection, Table
from ..validation import check_int, check_path_for_writing
from ..widget.options import check_class_count
from ..widget.shown import isolated
from .columns import printable
from .identity import digest, software_versions
from .result import WORST_COUNT
from .store import IG, timestamp

if TYPE_CHECKING:
    from .result import DatasetResult

# Worst images shown per column, at most (by default: result.WORST_COUNT).
MAX_WORST = 100
# Classes with a mean map: the most frequent targets.
MAX_CLASS_MAPS = 24
# Which end of a column is the worse one; a column not named here: the largest values.
HIGH_IS_WORSE = {
    "delta": True,
    "deletion_auc": True,
    "insertion_auc": False,
    "mask_share": False,
    "score": False,
    "correct": False,
}
# Columns summarised as faithfulness measures, when the store has them.
MEASURES = ("delta", "insertion_auc", "deletion_auc", "mask_share", "score")
# Completeness error bins (relative error): upper edges.
DELTA_EDGES = (0.001, 0.01, 0.05, 0.1, 0.5, math.inf)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pixels between an image and its map in a thumbnail picture.
GAP = 2
MISSING = "\u2013"

STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f1f1f;
       background: #fff; margin: 0 auto; max-width: 1180px; padding: 24px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 32px 0 8px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
h3 { font-size: 1.1em; margin: 20px 0 6px; }
p.note { color: #4a4a4a; margin: 4px 0; }
table { border-collapse: collapse; margin: 8px 0 16px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: left; vertical-align: middle; }
th { background: #f2f2f2; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
table.facts td.number { text-align: left; }
.bar { display: inline-block; height: 10px; background: #3a6ea5; }
img { image-rendering: pixelated; }
td img { height: 96px; width: auto; display: block; }
.pictures { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; }
figure img { height: 160px; width: auto; display: block; }
figcaption { max-width: 340px; font-size: 0.9em; color: #333; }
"""


class _Markup(str):
    """HTML this module wrote (a picture, a bar, an isolated name): put in as it is."""


def _cell(value: Any) -> str:
    """A value as escaped text: numbers formatted, text from a model or user isolated."""
    if isinstance(value, _Markup):
        return value
    if value is None:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return MISSING
        return format_number(number) if math.isfinite(number) else str(number)
    return _name(str(value))


def _name(text: str) -> _Markup:
    """Text from a model or a user, escaped and isolated (its direction stays inside)."""
    return _Markup(html.escape(isolated(printable(text))))


def _row(values: Sequence[Any], header: bool = False) -> str:
    tag = "th" if header else "td"
    cells = []
    for value in values:
        numeric = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        kind = ' class="number"' if numeric and not header else ""
        cells.append(f"<{tag}{kind}>{_cell(value)}</{tag}>")
    return "<tr>" + "".join(cells) + "</tr>"


def _own(text: str) -> _Markup:
    """The page's own text (no model or user text inside), escaped."""
    return _Markup(html.escape(text))


def _table(
    caption: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    kind: str = "",
    own: bool = False,
) -> str:
    """A table; ``own``: its caption and column names are the page's own text."""
    if own:
        caption, columns = _own(caption), [_own(column) for column in columns]
    body = "\n".join(_row(row) for row in rows)
    attribute = f' class="{kind}"' if kind else ""
    return (
        f"<table{attribute}>\n<caption>{_cell(caption)}</caption>\n"
        f"<thead>{_row(columns, header=True)}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    )


def _img(png: bytes, alt: str) -> _Markup:
    encoded = base64.b64encode(png).decode("ascii")
    return _Markup(f'<img src="data:image/png;base64,{encoded}" alt="{_cell(alt)}">')


def _figure(png: bytes, caption: str, alt: str | None = None) -> str:
    """A picture and its caption (text, or markup this module wrote)."""
    text = caption if isinstance(caption, _Markup) else _cell(caption)
    return f"<figure>{_img(png, alt or caption)}<figcaption>{text}</figcaption></figure>"


def _paragraph(text: str, own: bool = False) -> str:
    """A sentence: the page's own (``own``) or a finding's (isolated as a whole)."""
    return f'<p class="note">{_own(text) if own else _cell(text)}</p>'


def png_bytes(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 array as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def side_by_side(image: np.ndarray, maps: np.ndarray, render_options: dict[str, Any]) -> bytes:
    """A thumbnail picture: the display image and its map drawn by the renderer, as PNG."""
    drawn = render_maps(image, maps[0], maps[1], **render_options)
    gap = np.full((image.shape[0], GAP, 3), 255, np.uint8)
    return png_bytes(np.concatenate([image, gap, drawn], axis=1))


def _check_worst_by(worst_by: Any, table: Any) -> list[tuple[str, bool]]:
    """``worst_by`` as (column, high is worse) pairs, each a numeric or boolean column."""
    import pandas as pd

    if worst_by is None:
        names: list[Any] = [name for name in MEASURES if name in table and name != "score"]
    elif isinstance(worst_by, (str, tuple)):
        names = [worst_by]
    elif isinstance(worst_by, Sequence):
        names = list(worst_by)
    else:
        raise TypeError(
            "worst_by: expected a column name, (column, 'high' or 'low') or a list of them, "
            f"got {type(worst_by).__name__}"
        )
    checked = []
    for position, entry in enumerate(names):
        where = f"worst_by[{position}]" if not isinstance(worst_by, (str, tuple)) else "worst_by"
        high = None
        if isinstance(entry, tuple):
            if len(entry) != 2 or entry[1] not in ("high", "low"):
                raise ValueError(
                    f"{where}: expected (column, 'high' or 'low'): which end is worse, "
                    f"got {entry!r}"
                )
            entry, high = entry[0], entry[1] == "high"
        if not isinstance(entry, str):
            raise TypeError(f"{where}: expected a column name, got {type(entry).__name__}")
        if entry not in table:
            raise ValueError(
                f"{where}: no column '{entry}' in the table; expected one of "
                f"{', '.join(map(str, table.columns))}"
            )
        dtype = table[entry].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise ValueError(f"{where}: column '{entry}' holds {dtype}; expected numbers")
        checked.append((entry, HIGH_IS_WORSE.get(entry, True) if high is None else high))
    return checked


def _check_value(where: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, numbers.Real, np.bool_)):
        raise TypeError(
            f"{where}: expected str, int, float, bool or None, got {type(value).__name__}"
        )


def check_section(position: int, finding: Any) -> ReportSection:
    """The ``ReportSection`` of ``sections[position]``, every part checked (raises naming it)."""
    where = f"sections[{position}]"
    if isinstance(finding, ReportSection):
        section = finding
    else:
        method = getattr(finding, "report_section", None)
        if not callable(method):
            raise TypeError(
                f"{where}: expected a ReportSection or an object with report_section() "
                f"(igw.compare_datasets, igw.cluster_maps, igw.sanity_check, ...), "
                f"got {type(finding).__name__}"
            )
        section = method()
        if not isinstance(section, ReportSection):
            raise TypeError(
                f"{where}: report_section() returned {type(section).__name__}; "
                "expected a ReportSection"
            )
    if not isinstance(section.title, str):
        raise TypeError(f"{where}.title: expected a string, got {type(section.title).__name__}")
    for index, sentence in enumerate(section.summary):
        if not isinstance(sentence, str):
            raise TypeError(f"{where}.summary[{index}]: expected a string")
    for index, table in enumerate(section.tables):
        if not isinstance(table, Table):
            raise TypeError(f"{where}.tables[{index}]: expected a Table")
        for number, row in enumerate(table.rows):
            if len(row) != len(table.columns):
                raise ValueError(
                    f"{where}.tables[{index}].rows[{number}]: expected {len(table.columns)} "
                    f"values (one per column), got {len(row)}"
                )
            for value in row:
                _check_value(f"{where}.tables[{index}].rows[{number}]", value)
    for index, picture in enumerate(section.pictures):
        if not isinstance(picture, Picture):
            raise TypeError(f"{where}.pictures[{index}]: expected a Picture")
        if not isinstance(picture.png, bytes) or not picture.png.startswith(PNG_SIGNATURE):
            raise ValueError(f"{where}.pictures[{index}].png: expected PNG bytes")
    return section


def _versions_text(versions: Any) -> str:
    if not isinstance(versions, dict) or not versions:
        return "not recorded (a store written before ig-widget recorded them)"
    return ", ".join(f"{name} {value}" for name, value in versions.items())


def _option_text(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def _what_was_run(result: DatasetResult, manifest: dict[str, Any]) -> str:
    options = manifest["options"]
    layout = manifest.get("layout") or {}
    rows: list[tuple[str, Any]] = [
        ("store", result.path),
        ("created", manifest.get("created")),
        ("images stored", len(result)),
        ("complete", result.complete),
        ("image shape", _option_text(layout.get("image_shape"))),
        ("classes", layout.get("classes")),
    ]
    identities = {"model", "preprocess", "labels"}
    rows += [
        (name, _option_text(value)) for name, value in options.items() if name not in identities
    ]
    rows += [
        ("model digest", options.get("model") or "none (no stable identity)"),
        (
            "preprocess digest",
            "none (no preprocess)"
            if options.get("preprocess") == digest(None)
            else options.get("preprocess"),
        ),
    ]
    if "labels" in options:
        rows.append(("labels digest", options["labels"]))
    reruns = manifest.get("reruns") or []
    rows.append(("reruns", len(reruns)))
    rows.append(("store created with", _versions_text(manifest.get("versions"))))
    rows.append(("report written with", _versions_text(software_versions())))
    return "<h2>What was run</h2>\n" + _table(
        "Options and versions",
        ("", "value"),
        [(_own(name), value) for name, value in rows],
        kind="facts",
        own=True,
    )


def _statistics(values: Any) -> list[Any]:
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return [0, *([None] * 6)]
    low, median, high = np.percentile(finite, [10, 50, 90])
    return [
        int(finite.size),
        float(finite.mean()),
        float(finite.min()),
        float(low),
        float(median),
        float(high),
        float(finite.max()),
    ]


def _summaries(result: DatasetResult, table: Any) -> str:
    if "delta" not in table:
        return _faithfulness(
            table,
            [
                "<h2>Faithfulness</h2>",
                _paragraph(
                    f"{REGISTRY[result.explainer].title} has no completeness error (the sum of "
                    "integrated gradients' map equals the score's change; this method's need "
                    "not), so the store has no delta column.",
                    own=True,
                ),
            ],
        )
    parts = ["<h2>Completeness and faithfulness</h2>"]
    delta = np.asarray(table["delta"], np.float64)
    counts, lower = [], 0.0
    for edge in DELTA_EDGES:
        count = int(np.count_nonzero((delta >= lower) & (delta < edge)))
        counts.append((lower, edge, count))
        lower = edge
    most = max(count for _, _, count in counts) or 1
    rows = []
    for lower, edge, count in counts:
        span = (
            f"at least {format_percent(100 * lower)}"
            if math.isinf(edge)
            else f"{format_percent(100 * lower)} to {format_percent(100 * edge)}"
        )
        share = count / len(delta) if len(delta) else 0.0
        bar = _Markup(f'<span class="bar" style="width:{round(200 * count / most)}px"></span>')
        rows.append((_own(span), count, _own(format_percent(100 * share)), bar))
    parts.append(
        _table(
            "Completeness error (delta: how far the attributions' sum is from the score's "
            "change, relative to it)",
            ("error", "images", "share", ""),
            rows,
            own=True,
        )
    )
    line = result.convergence_summary()
    parts.append(_paragraph(line or "Every image's completeness error is within 5 %.", own=True))
    return _faithfulness(table, parts)


def _faithfulness(table: Any, parts: list[str]) -> str:
    """``parts`` followed by the per-image measures' summary, for any method."""
    measures = [name for name in MEASURES if name in table]
    parts.append(
        _table(
            "Per-image measures",
            ("column", "images", "mean", "min", "10th pct", "median", "90th pct", "max"),
            [(_own(name), *_statistics(table[name])) for name in measures],
            own=True,
        )
    )
    if "correct" in table and table["correct"].notna().any():
        known = table["correct"].dropna()
        parts.append(
            _paragraph(
                f"Top class equals the label for {int(known.sum()):,} of {len(known):,} "
                f"labelled images ({format_percent(100 * float(known.mean()))}).",
                own=True,
            )
        )
    if not {"insertion_auc", "deletion_auc"} & set(table.columns):
        parts.append(
            _paragraph(
                "No insertion or deletion areas are stored (explain_dataset(..., "
                "insertion_deletion_steps=N) computes them).",
                own=True,
            )
        )
    return "\n".join(parts)


def _class_text(index: Any, names: list[str] | None) -> Any:
    """A class as its name (isolated) and number, or its number alone without names."""
    if index is None:
        return None
    index = int(index)
    if names is not None and 0 <= index < len(names):
        return _Markup(f"{_name(names[index])} ({index})")
    return index


def method_words(result: DatasetResult) -> str:
    """What the store's maps are, in words: "integrated gradients" or "Grad-CAM map"."""
    if result.explainer == IG:
        return "integrated gradients"
    return f"{REGISTRY[result.explainer].title} map"


def colour_note(options: dict[str, Any], maps: str = "integrated gradients") -> str:
    """What a picture's colours mean, in words, for checked render options (``maps``: what
    the pictures show, ``method_words``).

    Examples
    --------
    >>> colour_note(validate_render_options(polarity="both"))[64:]
    '(red: raises the score; blue: lowers the score), scaled to its own strongest pixels.'
    """
    colours = polarity_colors(options)
    signs = ("positive", "negative") if options["polarity"] == "both" else (options["polarity"],)
    key = "; ".join(f"{colour_name(colours[sign])}: {MEANINGS[sign]}" for sign in signs)
    return (
        f"Each picture: the image, and beside it its {maps} ({key}), scaled "
        "to its own strongest pixels."
    )


def _worst(
    result: DatasetResult,
    table: Any,
    worst_by: list[tuple[str, bool]],
    count: int,
    names: list[str] | None,
    render_options: dict[str, Any],
) -> str:
    if not worst_by:
        return ""
    note = colour_note(render_options, method_words(result))
    parts = ["<h2>Worst images</h2>", _paragraph(note, own=True)]
    for column, high in worst_by:
        values = table[column].astype("Float64")
        order = values.sort_values(ascending=not high, kind="stable", na_position="last")
        chosen = [int(index) for index in order.index[:count]]
        images, maps = result.thumbnails(chosen)
        rows = []
        for index, image, channel_maps in zip(chosen, images, maps, strict=True):
            row = table.loc[index]
            picture = _img(side_by_side(image, channel_maps, render_options), f"image {index}")
            rows.append(
                (
                    index,
                    picture,
                    row["source"],
                    _class_text(_plain(row["label"]), names),
                    _class_text(row["predicted"], names),
                    _class_text(row["target"], names),
                    float(row["score"]),
                    _plain(row[column]),
                )
            )
        end = "largest" if high else "smallest"
        parts.append(f"<h3>{_own(f'By {column} ({end} first)')}</h3>")
        parts.append(
            _table(
                f"The {len(chosen)} images with the {end} {column}: image and "
                f"{method_words(result)} (the store's thumbnails)",
                ("image", "picture", "source", "label", "predicted", "target", "score", column),
                rows,
                own=True,
            )
        )
    return "\n".join(parts)


def _missing(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def _plain(value: Any) -> Any:
    """A table value as a Python scalar (None where missing)."""
    if _missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def class_means(
    result: DatasetResult, classes: list[int]
) -> tuple[dict[int, int], dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per class (by target): image count, mean thumbnail and mean normalised thumbnail map.

    Each image's two channel maps are divided by their total (the sum of both)
    before averaging, so that every image counts alike; images whose maps are
    all zero add to the count and the mean image only. Read one chunk at a time.
    """
    height, width = result.thumbnail_shape
    wanted = set(classes)
    counts = dict.fromkeys(classes, 0)
    images = {c: np.zeros((height, width, 3), np.float64) for c in classes}
    maps = {c: np.zeros((2, height, width), np.float64) for c in classes}
    targets = result._table["target"]
    for rows, arrays in result._chunks(("thumbnails", "thumbnail_maps")):
        for row, image, channel_maps in zip(
            rows, arrays["thumbnails"], arrays["thumbnail_maps"], strict=True
        ):
            target = int(targets.loc[row])
            if target not in wanted:
                continue
            counts[target] += 1
            images[target] += image
            values = channel_maps.astype(np.float64)
            total = float(values.sum())
            if total > 0:
                maps[target] += values / total
    return (
        counts,
        {c: images[c] / max(counts[c], 1) for c in classes},
        {c: maps[c] / max(counts[c], 1) for c in classes},
    )


def _class_maps(
    result: DatasetResult, table: Any, names: list[str] | None, render_options: dict[str, Any]
) -> str:
    frequency = table["target"].value_counts(sort=False)
    ordered = sorted(frequency.index, key=lambda c: (-int(frequency[c]), int(c)))
    classes = [int(c) for c in ordered[:MAX_CLASS_MAPS]]
    if not classes:
        return ""
    counts, images, maps = class_means(result, classes)
    figures = []
    for target in classes:
        image = np.rint(images[target]).astype(np.uint8)
        png = side_by_side(image, maps[target].astype(np.float32), render_options)
        name = _class_text(target, names)
        figures.append(
            _figure(
                png,
                _Markup(f"{_cell(name)}: mean of {counts[target]:,} images"),
                f"class {target}: mean image and map",
            )
        )
    left = len(frequency) - len(classes)
    note = f" The {left} least frequent classes are left out." if left > 0 else ""
    return (
        "<h2>Mean map per class</h2>\n"
        + _paragraph(
            "Per explained class (target): the mean image and the mean "
            f"{method_words(result)}, each image's map divided by its total so that every "
            "image counts alike." + note + " " + colour_note(render_options, method_words(result)),
            own=True,
        )
        + f'\n<div class="pictures">{"".join(figures)}</div>'
    )


def _section(section: ReportSection) -> str:
    parts = [f"<h2>{_cell(section.title)}</h2>"]
    parts += [_paragraph(sentence) for sentence in section.summary]
    parts += [_table(table.caption, table.columns, table.rows) for table in section.tables]
    if section.pictures:
        figures = "".join(_figure(p.png, p.caption) for p in section.pictures)
        parts.append(f'<div class="pictures">{figures}</div>')
    return "\n".join(parts)


def report_html(
    result: DatasetResult,
    sections: Sequence[ReportSection],
    names: list[str] | None,
    worst_by: list[tuple[str, bool]],
    worst: int,
    render_options: dict[str, Any],
) -> str:
    """The page (checked arguments; see ``write_report``)."""
    manifest = result._manifest
    table = result._table
    title = f"Audit of {_name(result.path)}"
    body = [
        f"<h1>{title}</h1>",
        _paragraph(
            f"Written {timestamp()} by ig-widget from the store's {len(result):,} images.",
            own=True,
        ),
        _what_was_run(result, manifest),
    ]
    if len(table):
        body += [
            _summaries(result, table),
            _worst(result, table, worst_by, worst, names, render_options),
            _class_maps(result, table, names, render_options),
        ]
    body += [_section(section) for section in sections]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # No request may leave the page: only inline styles and data: pictures.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">\n"
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n</body>\n</html>\n"
    )


def write_report(
    result: DatasetResult,
    path: str | os.PathLike,
    *,
    sections: Sequence[Any] = (),
    class_names: Sequence[str] | None = None,
    worst_by: Any = None,
    worst: int = WORST_COUNT,
    **render_options: Any,
) -> Path:
    """Write ``result``'s audit report to ``path``; see ``DatasetResult.report``."""
    check_path_for_writing(path, "path", HTML_SUFFIXES)
    worst = check_int("worst", worst, low=1, high=MAX_WORST)
    names = check_class_names(class_names)
    layout = result._layout
    if layout is not None:
        check_class_count(names, layout.classes)
    options = validate_render_options(**render_options)
    columns = _check_worst_by(worst_by, result._table)
    if isinstance(sections, (str, bytes)) or not isinstance(sections, Sequence):
        raise TypeError(
            f"sections: expected a list of findings (each with report_section()), "
            f"got {type(sections).__name__}"
        )
    checked = [check_section(position, finding) for position, finding in enumerate(sections)]
    page = report_html(result, checked, names, columns, worst, options)
    return write_file(os.fsdecode(path), lambda: page.encode("utf-8"), HTML_SUFFIXES)
