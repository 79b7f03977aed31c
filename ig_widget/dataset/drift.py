"""``compare_datasets``: what changed between two stores of the same images.

Two stores (two models, two checkpoints, two baselines) explain the same
images; the comparison has one row per image: whether the predicted class
changed and by how much the explained score moved, how alike the two maps
are (Spearman rank correlation over pixels, and the overlap of their top
pixels), and, when the stores have masks, how the share of positive
attribution inside the mask moved. The maps are read from the stores a
chunk at a time, so memory stays flat whatever the dataset's size.

A map is compared as the attribution summed over channels, signed: the
pixels that speak most for the explained class are its top pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..report_section import Picture, ReportSection, Table
from ..stability import top_count
from ..validation import check_number
from .result import DatasetResult, as_dataset_result

# The share of pixels that counts as a map's top region.
TOP_SHARE = 0.05
# How many images the report's table lists, and how many it shows as pictures.
REPORT_ROWS = 10
REPORT_PICTURES = 3
# Columns of the comparison; mask_share_* only when both stores have masks.
COMPARISON_COLUMNS = (
    "source",
    "label",
    "predicted_a",
    "predicted_b",
    "prediction_changed",
    "score_a",
    "score_b",
    "score_change",
    "rank_correlation",
    "top_iou",
)
MASK_COLUMNS = ("mask_share_a", "mask_share_b", "mask_share_change")


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of two maps over their pixels (NaN if one is constant).

    Ties share their average rank, as in ``scipy.stats.spearmanr``.

    Examples
    --------
    >>> rank_correlation(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 40, 30]))
    0.8
    """
    from scipy.stats import rankdata

    rx = rankdata(np.ravel(x))
    ry = rankdata(np.ravel(y))
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float("nan") if denominator == 0 else float(rx @ ry) / denominator


def top_pixels(values: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """Boolean mask of the ``ceil(share * pixels)`` largest values (ties: the first in order).

    Examples
    --------
    >>> top_pixels(np.array([[0.0, 5.0], [3.0, 1.0]]), 0.5).tolist()
    [[False, True], [True, False]]
    """
    flat = np.ravel(values)
    count = top_count(flat.size, 100 * share)
    mask = np.zeros(flat.size, bool)
    mask[np.argsort(-flat, kind="stable")[:count]] = True
    return mask.reshape(np.shape(values))


def top_iou(x: np.ndarray, y: np.ndarray, share: float = TOP_SHARE) -> float:
    """Intersection over union of the top ``share`` pixels of two maps.

    Examples
    --------
    >>> top_iou(np.arange(10.0), np.arange(10.0)[::-1], 0.5)
    0.0
    """
    top_x, top_y = top_pixels(x, share), top_pixels(y, share)
    return float(np.count_nonzero(top_x & top_y) / np.count_nonzero(top_x | top_y))


def _check_names(names: Any) -> tuple[str, str]:
    if (
        isinstance(names, (str, bytes))
        or not isinstance(names, Sequence)
        or len(names) != 2
        or not all(isinstance(n, str) and n.strip() for n in names)
        or names[0] == names[1]
    ):
        raise ValueError(f"names: expected two different non-empty names, got {names!r}")
    return str(names[0]), str(names[1])


def _check_same_images(a: DatasetResult, b: DatasetResult) -> None:
    """Refuse, naming ``b``, two stores that do not hold the same images (before reading maps)."""
    rows_a, rows_b = a._table.index, b._table.index
    if not rows_a.equals(rows_b):
        only_a = rows_a.difference(rows_b)
        only_b = rows_b.difference(rows_a)
        which = (
            f"image {int(only_a[0])} is in a only"
            if len(only_a)
            else f"image {int(only_b[0])} is in b only"
        )
        raise ValueError(
            f"b: expected a store of the same images as a; a holds {len(a):,} images, b "
            f"{len(b):,} ({which})"
        )
    if a._layout is None or b._layout is None:
        raise ValueError("a: the stores hold no image yet; nothing to compare")
    for what, value_a, value_b in (
        ("image shape", a._layout.image_shape, b._layout.image_shape),
        # Height and width: the maps' channel sums are compared, so a one-channel map
        # (Grad-CAM's) compares with a three-channel one (integrated gradients').
        ("map size", a._layout.map_shape[:2], b._layout.map_shape[:2]),
    ):
        if value_a != value_b:
            raise ValueError(
                f"b: expected the same {what} as a, {tuple(value_a)}; got {tuple(value_b)}"
            )
    if a._checksums is not None and b._checksums is not None:
        for row in rows_a:
            digest_a = a._checksums[int(row)].get("inputs")
            if digest_a != b._checksums[int(row)].get("inputs"):
                raise ValueError(
                    f"b: expected the same images as a; image {int(row)} differs (its "
                    f"pixels as stored have another checksum: a {digest_a}, b "
                    f"{b._checksums[int(row)].get('inputs')})"
                )


def _summed_maps(result: DatasetResult, rows: list[int]) -> np.ndarray:
    """The attributions of ``rows`` summed over channels, (n, H, W) float64."""
    return result.read_rows("attributions", rows).sum(axis=-1, dtype=np.float64)


def _blocks(rows: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def compare_datasets(
    a: DatasetResult | str | os.PathLike,
    b: DatasetResult | str | os.PathLike,
    *,
    names: Sequence[str] = ("a", "b"),
    top_share: float = TOP_SHARE,
) -> DatasetComparison:
    """Compare two stores of the same images, image by image.

    Parameters
    ----------
    a, b : DatasetResult or store path
        Two results of ``explain_dataset`` over the same images (the same
        count, the same pixels as stored, maps of the same height and width), e.g. a
        model before and after fine-tuning.
    names : (str, str)
        What to call ``a`` and ``b`` in the report and the Gallery.
    top_share : float
        The share of pixels that counts as a map's top region for ``top_iou``.

    Returns
    -------
    DatasetComparison
        Its ``table`` has one row per image: ``predicted_a``, ``predicted_b``,
        ``prediction_changed``, ``score_a``, ``score_b``, ``score_change``
        (b minus a; each the model's output for the class its store
        explained), ``rank_correlation`` (Spearman over pixels of the
        channel-summed maps), ``top_iou`` (intersection over union of their
        top ``top_share`` pixels) and, when both stores have masks,
        ``mask_share_a``, ``mask_share_b``, ``mask_share_change``.

    Examples
    --------
    >>> drift = igw.compare_datasets("before.store", "after.store")  # doctest: +SKIP
    >>> drift.table.sort_values("rank_correlation").head()  # doctest: +SKIP
    """
    a = as_dataset_result("a", a)
    b = as_dataset_result("b", b)
    names = _check_names(names)
    share = check_number("top_share", top_share, low=0.0, high=1.0)
    if share == 0:
        raise ValueError("top_share: expected a number in (0, 1], got 0.0")
    _check_same_images(a, b)
    import pandas as pd

    table_a, table_b = a._table, b._table
    rows = [int(row) for row in table_a.index]
    correlation = np.full(len(rows), np.nan)
    iou = np.full(len(rows), np.nan)
    check_inputs = a._checksums is None or b._checksums is None
    assert a._layout is not None
    done = 0
    for block in _blocks(rows, a._layout.chunk_size):
        if check_inputs:
            # Stores written without checksums: the pixels themselves, a block at a time.
            same = np.all(
                a.read_rows("inputs", block) == b.read_rows("inputs", block),
                axis=(1, 2, 3),
            )
            if not same.all():
                raise ValueError(
                    f"b: expected the same images as a; image {block[int(np.argmin(same))]} differs"
                )
        maps_a, maps_b = _summed_maps(a, block), _summed_maps(b, block)
        for offset, (map_a, map_b) in enumerate(zip(maps_a, maps_b, strict=True)):
            correlation[done + offset] = rank_correlation(map_a, map_b)
            iou[done + offset] = top_iou(map_a, map_b, share)
        done += len(block)
    index = table_a.index
    table = pd.DataFrame(
        {
            "source": table_a["source"],
            "label": table_a["label"],
            "predicted_a": table_a["predicted"],
            "predicted_b": table_b["predicted"],
            "prediction_changed": pd.Series(
                table_a["predicted"].to_numpy() != table_b["predicted"].to_numpy(),
                index=index,
                dtype="boolean",
            ),
            "score_a": table_a["score"],
            "score_b": table_b["score"],
            "score_change": table_b["score"] - table_a["score"],
            "rank_correlation": pd.Series(correlation, index=index),
            "top_iou": pd.Series(iou, index=index),
        },
        index=index,
    )
    if "mask_share" in table_a and "mask_share" in table_b:
        table["mask_share_a"] = table_a["mask_share"]
        table["mask_share_b"] = table_b["mask_share"]
        table["mask_share_change"] = table_b["mask_share"] - table_a["mask_share"]
    return DatasetComparison(a, b, table, names, share)


class DatasetComparison:
    """Two stores of the same images compared image by image (``igw.compare_datasets``).

    ``table`` is a pandas DataFrame indexed by image (see
    ``compare_datasets`` for its columns); ``a`` and ``b`` are the two
    results. ``igw.Gallery(comparison)`` sorts and filters the images by these
    columns and shows the two stores' views side by side.

    Examples
    --------
    >>> drift.table.query("prediction_changed")  # doctest: +SKIP
    >>> igw.Gallery(drift, sort_by="rank_correlation", descending=False)  # doctest: +SKIP
    """

    def __init__(
        self,
        a: DatasetResult,
        b: DatasetResult,
        table: Any,
        names: tuple[str, str],
        top_share: float,
    ) -> None:
        self.a = a
        self.b = b
        self.names = names
        self.top_share = top_share
        self._table = table

    @property
    def table(self) -> Any:
        """One row per image: prediction, score, map and mask-share changes (a copy)."""
        return self._table.copy()

    def __len__(self) -> int:
        return len(self._table)

    def summary(self) -> tuple[str, ...]:
        """Sentences saying what changed, for the report and for reading.

        Examples
        --------
        >>> drift.summary()[1]  # doctest: +SKIP
        '3 of 120 images (2.5 %) changed their predicted class.'
        """
        table = self._table
        name_a, name_b = self.names
        count = len(table)
        changed = int(table["prediction_changed"].sum())
        top = f"{100 * self.top_share:g} %"
        lines = [
            f"'{name_b}' compared with '{name_a}' over the same {count:,} images.",
            f"{changed:,} of {count:,} images ({100 * changed / max(count, 1):.3g} %) changed "
            "their predicted class.",
            "The maps' rank correlation (Spearman over pixels): median "
            f"{table['rank_correlation'].median():.3g}, lowest "
            f"{table['rank_correlation'].min():.3g}; the overlap of their top {top} pixels "
            f"(IoU): median {table['top_iou'].median():.3g}.",
        ]
        if "mask_share_change" in table:
            lines.append(
                "The share of positive attribution inside the mask went from "
                f"{100 * table['mask_share_a'].mean():.3g} % to "
                f"{100 * table['mask_share_b'].mean():.3g} % on average; it rose on "
                f"{int((table['mask_share_change'] > 0).sum()):,} images."
            )
        return tuple(lines)

    def report_section(self) -> ReportSection:
        """The comparison's audit-report section: what changed, the images that moved most.

        Examples
        --------
        >>> result.report("audit.html", sections=[drift])  # doctest: +SKIP
        """
        name_a, name_b = self.names
        worst = self._table.sort_values("rank_correlation", na_position="first", kind="stable")
        columns = ["source", "predicted_a", "predicted_b", "rank_correlation", "top_iou"]
        if "mask_share_change" in worst:
            columns.append("mask_share_change")
        rows = tuple(
            (int(image), *(_plain(row[column]) for column in columns))
            for image, row in worst.head(REPORT_ROWS).iterrows()
        )
        headings = {
            "predicted_a": f"predicted ({name_a})",
            "predicted_b": f"predicted ({name_b})",
            "rank_correlation": "rank correlation",
            "top_iou": f"top {100 * self.top_share:g} % IoU",
            "mask_share_change": "mask share change",
        }
        return ReportSection(
            title=f"What changed between '{name_a}' and '{name_b}'",
            summary=self.summary(),
            pictures=tuple(self._picture(int(image)) for image in worst.index[:REPORT_PICTURES]),
            tables=(
                Table(
                    f"The {len(rows)} images whose maps changed most (lowest rank correlation)",
                    ("image", *(headings.get(column, column) for column in columns)),
                    rows,
                ),
            ),
        )

    def _picture(self, image: int) -> Picture:
        """Image ``image``'s thumbnail with store a's and store b's maps beside it."""
        from ..export import panels_png

        rgb, maps_a = self.a.thumbnails([image])
        _, maps_b = self.b.thumbnails([image])
        row = self._table.loc[image]
        heading = (
            f"Image #{image}: rank correlation {row['rank_correlation']:.3g}, "
            f"top {100 * self.top_share:g} % IoU {row['top_iou']:.3g}"
        )
        png = panels_png(
            rgb[0],
            [
                (self.names[0], (maps_a[0, 0], maps_a[0, 1])),
                (self.names[1], (maps_b[0, 0], maps_b[0, 1])),
            ],
            {},
            heading,
        )
        return Picture(f"{heading}; source {row['source']}", png)

    def __repr__(self) -> str:
        return (
            f"DatasetComparison({len(self)} images, '{self.names[0]}'='{self.a.path}', "
            f"'{self.names[1]}'='{self.b.path}')"
        )


def _plain(value: Any) -> str | int | float | bool | None:
    """A table value as the report takes it: a Python scalar, None for missing."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return str(value)
