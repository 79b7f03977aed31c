"""The columns of a dataset's table: one value per image, computed where the image is.

Each column is a ``Column``: a name, a pandas dtype, a sentence for the
documentation and a function of the ``Explained`` image (its item, its
``IGResult``, the model and preprocess that computed it, and its insertion
and deletion curves and its stability scores when they were asked for). The
table of ``explain_dataset`` has the columns of ``COLUMNS`` (those with
``needs_masks`` only when masks were given, those with ``needs_curves``
only with ``insertion_deletion_steps``, those with ``needs_stability`` only
with ``stability``, those with ``needs_sanity`` only with ``sanity_check=True``),
in that order. A new per-image
measure is one more ``Column`` in ``COLUMNS``: it is computed by whichever
executor runs the image (local or a Ray worker), stored in the Parquet table,
sortable and filterable in the gallery. Stores written before it existed
still open; their table lacks the column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..stability import top_count

if TYPE_CHECKING:
    from ..engine import IGResult
    from ..explainers import AttributionResult
    from ..faithfulness import InsertionDeletionResult
    from .sources import Item


@dataclass(frozen=True)
class Explained:
    """One image after its computation, as the columns see it."""

    item: Item
    result: IGResult | AttributionResult
    model: Any
    preprocess: Callable[[Any], Any] | None
    curves: InsertionDeletionResult | None = None
    stability: StabilityScores | None = None
    # Similarity of the map to the fully randomised model's (sanity_check=True).
    sanity_similarity: float | None = None


@dataclass(frozen=True)
class StabilityScores:
    """How far an image's maps over several uniform-noise baselines agree (``igw.stability``)."""

    rank_correlation: float
    top_share: float


@dataclass(frozen=True)
class Column:
    """One column of the table: ``value(explained)`` for each image."""

    name: str
    dtype: str
    description: str
    value: Callable[[Explained], Any]
    needs_masks: bool = False
    needs_curves: bool = False
    needs_stability: bool = False
    needs_sanity: bool = False
    # Integrated gradients' only: completeness and the integration rule's steps.
    needs_completeness: bool = False


def positive_attribution(result: IGResult | AttributionResult) -> np.ndarray:
    """Per pixel, the positive part of the channel sum of the attributions (H, W)."""
    return positive_part(result.attributions)


def positive_part(attributions: np.ndarray) -> np.ndarray:
    """``positive_attribution`` of a bare (H, W, C) map."""
    return np.maximum(attributions.sum(axis=2, dtype=np.float64), 0.0)


def mask_share(explained: Explained) -> float:
    """Share of the positive attribution that lies inside the mask (NaN if there is none).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> a = np.zeros((2, 2, 1), np.float32); a[0, 0], a[1, 1] = 3.0, 1.0
    >>> item = NS(mask=np.array([[True, False], [False, False]]))
    >>> mask_share(Explained(item, NS(attributions=a), None, None))
    0.75
    """
    positive = positive_attribution(explained.result)
    total = positive.sum()
    if total <= 0:
        return float("nan")
    return float(positive[explained.item.mask].sum() / total)


# The salient region S of Shared Interest's columns: this share of the pixels, the
# most positively attributed (the same share as the top-pixel overlap elsewhere).
TOP_SHARE = 0.05


def salient_region(positive: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """The top ``share`` of the pixels by positive attribution, as a boolean (H, W) mask.

    ``ceil(share * pixels)`` pixels (``top_count``: 0.07 of 100 pixels is 7), the
    largest first (ties in reading order), never one without positive attribution.

    Examples
    --------
    >>> salient_region(np.array([[0.0, 3.0], [1.0, 3.0]]), 0.5).tolist()
    [[False, True], [False, True]]
    """
    flat = positive.ravel()
    count = top_count(flat.size, 100 * share)
    top = np.argsort(-flat, kind="stable")[:count]
    region = np.zeros(flat.size, bool)
    region[top[flat[top] > 0]] = True
    return region.reshape(positive.shape)


def shared_interest(
    positive: np.ndarray, mask: np.ndarray, share: float = TOP_SHARE
) -> tuple[float, float, float]:
    """Shared Interest's coverages of salient region S and ground truth G (Boyd et al. 2022).

    Returns ``|S∩G| / |G|`` (ground-truth coverage), ``|S∩G| / |S|``
    (saliency coverage) and ``|S∩G| / |S∪G|`` (IoU), each NaN when its
    denominator is empty. S is ``salient_region(positive, share)``.

    Examples
    --------
    >>> positive = np.array([[4.0, 3.0], [0.0, 0.0]])
    >>> mask = np.array([[True, False], [True, False]])
    >>> shared_interest(positive, mask, 0.5)
    (0.5, 0.5, 0.3333333333333333)
    """
    salient = salient_region(positive, share)
    truth = np.asarray(mask, bool)
    both = float(np.count_nonzero(salient & truth))
    sizes = (np.count_nonzero(truth), np.count_nonzero(salient), np.count_nonzero(salient | truth))
    ground, saliency, iou = (float(both / size) if size else float("nan") for size in sizes)
    return ground, saliency, iou


def _shared_interest(explained: Explained, which: int) -> float:
    assert explained.item.mask is not None  # the column exists only with masks
    positive = positive_attribution(explained.result)
    return shared_interest(positive, explained.item.mask)[which]


def _curves(explained: Explained) -> InsertionDeletionResult:
    assert explained.curves is not None  # the column exists only with curves
    return explained.curves


def _stability(explained: Explained) -> StabilityScores:
    assert explained.stability is not None  # the column exists only with stability
    return explained.stability


def _integrated(explained: Explained) -> IGResult:
    from ..engine import IGResult

    # The columns exist only for integrated gradients.
    assert isinstance(explained.result, IGResult)
    return explained.result


def _correct(explained: Explained) -> Any:
    label = explained.item.label
    return None if label is None else bool(label == int(np.argmax(explained.result.scores)))


COLUMNS: tuple[Column, ...] = (
    Column(
        "source",
        "string",
        "Where the image came from: its file path, or 'array[i]', 'tf.data[i]', ... (bytes "
        "of a file name that are not UTF-8 kept as \\xNN)",
        lambda e: printable(e.item.source),
    ),
    Column("label", "Int64", "The true class, where given.", lambda e: e.item.label),
    Column(
        "predicted",
        "int64",
        "The model's top class.",
        lambda e: int(np.argmax(e.result.scores)),
    ),
    Column("target", "int64", "The explained class.", lambda e: e.result.target),
    Column("score", "float64", "The model's output for the target.", lambda e: e.result.score),
    Column(
        "delta",
        "float64",
        "Relative completeness error of the attributions (see IGResult.delta).",
        lambda e: _integrated(e).delta,
        needs_completeness=True,
    ),
    Column(
        "steps",
        "int64",
        "Intervals of the integration rule the row was computed with (steps='auto': the "
        "count it settled on; a row recomputed by DatasetResult.rerun: the rerun's).",
        lambda e: _integrated(e).steps,
        needs_completeness=True,
    ),
    Column(
        "correct",
        "boolean",
        "Whether the top class is the label (missing without a label).",
        _correct,
    ),
    Column(
        "mask_share",
        "float64",
        "Share of the positive attribution (channel sum, positive part) inside the mask.",
        mask_share,
        needs_masks=True,
    ),
    Column(
        "mask_area",
        "float64",
        "Share of the image's pixels inside the mask (mask_share / mask_area > 1: "
        "attribution concentrates on the mask).",
        lambda e: float(np.mean(np.asarray(e.item.mask))),
        needs_masks=True,
    ),
    Column(
        "ground_truth_coverage",
        "float64",
        "Shared Interest's ground-truth coverage: share of the mask inside the salient "
        "region (the top 5 % of pixels by positive attribution).",
        lambda e: _shared_interest(e, 0),
        needs_masks=True,
    ),
    Column(
        "saliency_coverage",
        "float64",
        "Shared Interest's saliency coverage: share of the salient region (top 5 % of "
        "pixels) inside the mask.",
        lambda e: _shared_interest(e, 1),
        needs_masks=True,
    ),
    Column(
        "mask_iou",
        "float64",
        "Intersection over union of the salient region (top 5 % of pixels) and the mask.",
        lambda e: _shared_interest(e, 2),
        needs_masks=True,
    ),
    Column(
        "insertion_auc",
        "float64",
        "Area under the insertion curve of the attributions (igw.insertion_deletion): "
        "high when the top-attributed pixels alone restore the score.",
        lambda e: _curves(e).insertion_auc,
        needs_curves=True,
    ),
    Column(
        "deletion_auc",
        "float64",
        "Area under the deletion curve: low when deleting the top-attributed pixels "
        "destroys the score first.",
        lambda e: _curves(e).deletion_auc,
        needs_curves=True,
    ),
    Column(
        "stability_rank_correlation",
        "float64",
        "Mean pairwise Spearman rank correlation between the image's maps from several "
        "uniform-noise baselines (explain_dataset's stability; igw.stability): 1 when every "
        "baseline ranks the pixels alike.",
        lambda e: _stability(e).rank_correlation,
        needs_stability=True,
    ),
    Column(
        "stability_top_share",
        "float64",
        "Share of the top 5 % pixels that are top in the maps of every uniform-noise baseline.",
        lambda e: _stability(e).top_share,
        needs_stability=True,
    ),
    Column(
        "sanity_similarity",
        "float64",
        "Spearman rank correlation of the absolute map with the map of the same model with "
        "every trainable layer re-initialised (igw.sanity_check's last step, seed 0): near 1, "
        "the map hardly depends on what the model learnt.",
        lambda e: e.sanity_similarity,
        needs_sanity=True,
    ),
)


def columns_for(
    has_masks: bool,
    names: tuple[str, ...] | None = None,
    has_curves: bool = False,
    has_stability: bool = False,
    has_sanity: bool = False,
    has_completeness: bool = True,
) -> tuple[Column, ...]:
    """The columns of a table: those of ``COLUMNS`` that apply, or those ``names``.

    ``has_completeness``: integrated gradients' ``delta`` and ``steps``
    (another method has neither: its table has no such columns).

    Examples
    --------
    >>> [c.name for c in columns_for(False)][:3]
    ['source', 'label', 'predicted']
    >>> [c.name for c in columns_for(False, has_curves=True)][-2:]
    ['insertion_auc', 'deletion_auc']
    >>> [c.name for c in columns_for(False, has_stability=True)][-1]
    'stability_top_share'
    >>> "delta" in [c.name for c in columns_for(False, has_completeness=False)]
    False
    """
    if names is not None:
        known = {column.name: column for column in COLUMNS}
        return tuple(known[name] for name in names if name in known)
    return tuple(
        column
        for column in COLUMNS
        if (has_masks or not column.needs_masks)
        and (has_curves or not column.needs_curves)
        and (has_stability or not column.needs_stability)
        and (has_sanity or not column.needs_sanity)
        and (has_completeness or not column.needs_completeness)
    )


def printable(text: str) -> str:
    """``text`` with what is not valid Unicode escaped: a file name that is not UTF-8.

    Such a name (read from the file system as lone surrogates) could not be
    written to Parquet or shown; its undecodable bytes are kept as ``\\xNN``.

    Examples
    --------
    >>> printable("caf\\udce9.png")
    'caf\\\\xe9.png'
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that are not undecoded bytes
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def table_rows(explained: list[Explained], columns: tuple[Column, ...]) -> Any:
    """The table rows of some images: a pandas DataFrame indexed by image."""
    import pandas as pd

    index = pd.Index([e.item.index for e in explained], dtype="int64", name="image")
    return pd.DataFrame(
        {
            column.name: pd.Series(
                [column.value(e) for e in explained], dtype=column.dtype, index=index
            )
            for column in columns
        },
        index=index,
    )
