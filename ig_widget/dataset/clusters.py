"""Shortcut discovery: the stored maps clustered per class, and Shared Interest for a store.

``cluster_maps`` follows spectral relevance analysis (SpRAy, Lapuschkin et
al. 2019): within each class, every image's map is reduced to a small
picture of where its positive attribution lies, and images whose pictures
are alike are grouped by spectral clustering. A class the model decides
for two different reasons (the object, or a mark that happens to come with
it) falls into two clusters, found without being told where the mark is.

The rule, step by step:

1. Per image, the positive part of the channel sum of the attributions,
   averaged over ``factor`` x ``factor`` blocks so the longer side is at
   most ``size``, then divided by its total (a map of shares summing to 1;
   a map without positive attribution stays 0).
2. Per class (of ``by``), self-tuning Gaussian affinities between the
   reduced maps (Euclidean distances, each image's scale its distance to
   its ``neighbors``-th nearest image).
3. The number of clusters ``k``: unless given, the eigengap rule: with
   ``l_1 <= l_2 <= ...`` the eigenvalues of the graph's normalised
   Laplacian, the ``k`` in ``1..max_k`` with the largest ``l_(k+1) - l_k``
   (the first on ties), among those with ``l_k <= 0.1`` (``SEPARATION``:
   an eigenvalue near 0 is a group nearly cut off from the rest; larger
   ones come from variation within a group, such as attribution that is
   stronger in some images than in others). ``k = 1``: one cluster; a
   class of fewer than 3 images is one cluster.
4. Spectral clustering of the graph into ``k`` clusters (scikit-learn's
   ``SpectralClustering`` on the precomputed graph, labels assigned by
   ``cluster_qr``, which draws no random numbers).
5. Clusters are numbered class by class (in increasing class), within a
   class by size (largest first, then by the smallest image index), so the
   numbers do not depend on how the clustering labelled them.

Two passes over the store, a chunk in memory at a time: the first reads
the maps and keeps only the reduced ones (``size`` x ``size`` floats per
image), the second adds up every cluster's full-size maps and images.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..explainers import REGISTRY
from ..render import block_mean
from ..report_section import Picture, ReportSection, Table
from ..validation import check_choice, check_int
from .columns import TOP_SHARE, positive_part
from .columns import shared_interest as shared_interest_of
from .result import DatasetResult, as_dataset_result
from .store import IG, missing_dependency, thumbnail, thumbnail_factor

# The table columns a class can be taken from.
CLASS_COLUMNS = ("target", "predicted", "label")
# Classes up to this many images get the Laplacian's full spectrum; larger ones Lanczos.
DENSE_SPECTRUM = 300
# The largest Laplacian eigenvalue that still stands for a group of its own (step 3).
SEPARATION = 0.1
SHARED_INTEREST_COLUMNS = ("ground_truth_coverage", "saliency_coverage", "mask_iou")


def _sklearn() -> Any:
    try:
        import sklearn.cluster
        import sklearn.metrics
    except ImportError as exc:
        raise missing_dependency(exc) from exc
    return sklearn


def reduced_map(attributions: np.ndarray, factor: int) -> np.ndarray:
    """Step 1: positive attribution in ``factor`` blocks, as shares of its total (flat).

    Examples
    --------
    >>> a = np.zeros((4, 4, 1)); a[0, 0] = 3.0; a[3, 3] = 1.0
    >>> reduced_map(a, 2).tolist()
    [0.75, 0.0, 0.0, 0.25]
    """
    positive = positive_part(attributions)
    reduced = block_mean(positive, factor).astype(np.float64).ravel()
    total = reduced.sum()
    return reduced / total if total > 0 else reduced


def affinity(features: np.ndarray, neighbors: int) -> np.ndarray:
    """Step 2: self-tuning Gaussian affinities (Zelnik-Manor and Perona 2004).

    ``exp(-d_ij^2 / (s_i s_j))`` with ``s_i`` the distance from image ``i``
    to its ``neighbors``-th nearest image, 0 on the diagonal: each image's
    scale is its own neighbourhood's, so a tight group and a loose one are
    both groups, and images far from each other are not linked.
    """
    sklearn = _sklearn()
    distances = sklearn.metrics.pairwise_distances(features)
    nearest = min(neighbors, len(features) - 1)
    scale = np.partition(distances, nearest, axis=1)[:, nearest]
    # Identical maps (scale 0): the smallest positive distance there is, or 1.
    positive = distances[distances > 0]
    scale = np.maximum(scale, positive.min() if positive.size else 1.0)
    values = np.exp(-(distances**2) / np.outer(scale, scale))
    np.fill_diagonal(values, 0.0)
    return values


def laplacian_eigenvalues(graph: Any, count: int, seed: int = 0) -> np.ndarray:
    """The ``count`` smallest eigenvalues of the graph's normalised Laplacian, increasing.

    Examples
    --------
    >>> pairs = np.kron(np.eye(2), np.ones((2, 2))) - np.eye(4)
    >>> np.round(laplacian_eigenvalues(pairs, 3), 6).tolist()  # two separate pairs
    [0.0, 0.0, 2.0]
    """
    from scipy.sparse.csgraph import laplacian

    dense = laplacian(np.asarray(graph, np.float64), normed=True)
    size = len(dense)
    if size <= DENSE_SPECTRUM:
        values = np.linalg.eigvalsh(dense)[:count]
    else:
        from scipy.sparse.linalg import eigsh

        # The largest of I - L are the smallest of L: Lanczos finds those in a few
        # products with the matrix, where the full spectrum costs size^3.
        start = np.random.default_rng(seed).uniform(-1, 1, size)
        top = eigsh(np.eye(size) - dense, k=count, which="LA", v0=start, return_eigenvectors=False)
        values = np.sort(1.0 - top)
    return np.clip(values, 0.0, None)


def eigengap(values: np.ndarray, max_k: int, separation: float = SEPARATION) -> int:
    """Step 3: the ``k`` in ``1..max_k`` after which the eigenvalues jump most.

    Only a ``k`` whose ``l_k`` is at most ``separation`` counts: below it
    the first ``k`` eigenvalues stand for groups that are nearly cut off
    from each other, above it for variation within one group.

    Examples
    --------
    >>> eigengap(np.array([0.0, 0.0, 0.9, 1.0]), 3)
    2
    >>> eigengap(np.array([0.0, 0.3, 0.8, 1.0]), 3)  # a continuum, not two groups
    1
    """
    gaps = np.diff(values[: max_k + 1])
    gaps[values[: gaps.size] > separation] = -np.inf
    return int(np.argmax(gaps)) + 1 if gaps.size else 1


def _cluster_class(
    features: np.ndarray, k: int | None, max_k: int, neighbors: int, seed: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """One class's labels (0..k-1), its k, and the eigenvalues the rule looked at."""
    count = len(features)
    if count < 3:
        return np.zeros(count, np.int64), 1, np.zeros(0)
    graph = affinity(features, neighbors)
    top = min(max_k, count - 1)
    values = laplacian_eigenvalues(graph, top + 1, seed)
    chosen = eigengap(values, top) if k is None else min(k, count)
    if chosen == 1:
        return np.zeros(count, np.int64), 1, values
    sklearn = _sklearn()
    with warnings.catch_warnings():
        # Separate groups are what is looked for: a graph in pieces is expected.
        warnings.filterwarnings("ignore", "Graph is not fully connected")
        labels = sklearn.cluster.SpectralClustering(
            n_clusters=chosen,
            affinity="precomputed",
            assign_labels="cluster_qr",
            random_state=seed,
        ).fit_predict(graph)
    return np.asarray(labels, np.int64), chosen, values


@dataclass(frozen=True)
class MapClusters:
    """Clusters of a store's maps, per class (from ``igw.cluster_maps``).

    Attributes
    ----------
    path : str
        The store clustered.
    by : str
        The table column the classes came from ("target", "predicted" or "label").
    table : pandas.DataFrame
        Per clustered image (indexed by image): ``cluster`` and ``class``.
    summary : pandas.DataFrame
        Per cluster (indexed by cluster number): ``class``, ``size``, and
        ``k``, the number of clusters of its class.
    mean_maps, mean_images : ndarray, float32, (clusters, H, W, C)
        Each cluster's mean attributions (C: the map's channels, Grad-CAM's
        one) and mean input (raw pixel units).
    eigenvalues : dict of int to ndarray
        Per class, the Laplacian eigenvalues the eigengap rule looked at.
    size : int
        The longer side of the reduced maps that were clustered.
    title : str
        The method whose maps were clustered, as the pictures name it ("IG", "Grad-CAM", ...).
    """

    path: str
    by: str
    table: Any
    summary: Any
    mean_maps: np.ndarray
    mean_images: np.ndarray
    eigenvalues: dict[int, np.ndarray]
    size: int
    title: str = "IG"

    def __len__(self) -> int:
        return len(self.summary)

    def members(self, cluster: int) -> list[int]:
        """The images of cluster ``cluster``, in image order.

        Examples
        --------
        >>> clusters.members(1)  # doctest: +SKIP
        [3, 8, 12]
        """
        cluster = check_int("cluster", cluster, low=0, high=len(self) - 1)
        return [int(i) for i in self.table.index[self.table["cluster"] == cluster]]

    def thumbnails(self) -> tuple[np.ndarray, np.ndarray]:
        """Every cluster's mean image and mean map as the Gallery shows them.

        Returns display RGB (clusters, h, w, 3) uint8 and the map's channel maps
        (clusters, 2, h, w) float32, reduced as the store's thumbnails.
        """
        height, width = self.mean_images.shape[1:3]
        factor = thumbnail_factor(height, width)
        pictures = [
            thumbnail(image, maps, factor)
            for image, maps in zip(self.mean_images, self.mean_maps, strict=True)
        ]
        return np.stack([p[0] for p in pictures]), np.stack([p[1] for p in pictures])

    def report_section(self, class_names: Any = None) -> ReportSection:
        """The clusters for the audit report: sizes, classes, and each mean map as a picture.

        Examples
        --------
        >>> section = clusters.report_section(class_names=names)  # doctest: +SKIP
        """
        from ..export import panels_png

        def name(value: int) -> str:
            if class_names is not None and 0 <= value < len(class_names):
                return str(class_names[value])
            return f"class {value}"

        summary = self.summary
        classes = sorted({int(c) for c in summary["class"]})
        split = [c for c in classes if int(summary["k"][summary["class"] == c].iloc[0]) > 1]
        sentences = [
            f"{len(self.table):,} images clustered per {self.by} class by where their positive "
            f"attribution lies (maps reduced to at most {self.size} x {self.size}, each scaled "
            "to a total of 1; spectral clustering of each class's affinities, the "
            "number of clusters by the largest eigengap).",
            f"{len(split)} of {len(classes)} classes fall into more than one cluster"
            + (f": {', '.join(name(c) for c in split)}." if split else "."),
            "A small cluster whose mean map lies away from the object is a candidate shortcut: "
            "open its members in the Gallery (igw.Gallery(result, clusters=clusters)).",
        ]
        rows = tuple(
            (
                int(cluster),
                name(int(row["class"])),
                int(row["size"]),
                float(row["size"]) / float(summary["size"][summary["class"] == row["class"]].sum()),
            )
            for cluster, row in summary.iterrows()
        )
        table = Table(
            caption="Clusters: class, images, share of the class's images",
            columns=("cluster", "class", "images", "share of class"),
            rows=rows,
        )
        rgb, maps = self.thumbnails()
        pictures = tuple(
            Picture(
                caption=f"Cluster {cluster}: {name(int(row['class']))}, {int(row['size'])} images",
                png=panels_png(
                    rgb[cluster],
                    [(f"Mean {self.title}", (maps[cluster][0], maps[cluster][1]))],
                    {},
                    f"Cluster {cluster} · {name(int(row['class']))} · {int(row['size'])} images",
                ),
            )
            for cluster, row in summary.iterrows()
        )
        return ReportSection(
            title="Clusters of the maps (shortcut discovery)",
            summary=tuple(sentences),
            tables=(table,),
            pictures=pictures,
        )

    def __repr__(self) -> str:
        classes = self.summary["class"].nunique() if len(self) else 0
        return (
            f"MapClusters({len(self)} clusters of {len(self.table)} images in {classes} "
            f"classes, store='{self.path}')"
        )


def cluster_maps(
    result: DatasetResult | str | os.PathLike,
    *,
    by: str = "target",
    k: int | None = None,
    max_k: int = 8,
    size: int = 16,
    neighbors: int = 3,
    where: Any = None,
    seed: int = 0,
) -> MapClusters:
    """Cluster a store's maps per class, to find images explained for another reason.

    See the module docstring (``ig_widget.dataset.clusters``) for the rule.

    Parameters
    ----------
    result : DatasetResult or path
        From ``igw.explain_dataset`` (or ``igw.open_dataset``).
    by : {"target", "predicted", "label"}
        The table column whose classes are clustered separately ("target":
        the class each map explains).
    k : int, optional
        Clusters per class (at most the class's images); by default the
        eigengap rule chooses up to ``max_k``.
    max_k : int
        The most clusters the eigengap rule may choose per class.
    size : int
        The longer side of the reduced maps (at least 2).
    neighbors : int
        Each image's scale is its distance to this nearest image. Small, so
        that a group of a few images keeps a scale of its own (on the
        auditing notebook's images, 3 separates the marked images of a class
        from the others; 7, the self-tuning paper's choice, joins a group of
        6 to its class's other 12).
    where : boolean mask over the table, or image indices, optional
        The images to cluster; all by default.
    seed : int
        Seed of the eigen-solver's start; the same seed gives the same clusters.

    Returns
    -------
    MapClusters

    Examples
    --------
    >>> clusters = igw.cluster_maps(result)  # doctest: +SKIP
    >>> clusters.summary  # doctest: +SKIP
    >>> igw.Gallery(result, clusters=clusters)  # doctest: +SKIP
    """
    import pandas as pd

    result = as_dataset_result("result", result)
    by = check_choice("by", by, CLASS_COLUMNS)
    k = None if k is None else check_int("k", k, low=1)
    max_k = check_int("max_k", max_k, low=1)
    size = check_int("size", size, low=2)
    neighbors = check_int("neighbors", neighbors, low=1)
    seed = check_int("seed", seed, low=0)
    _sklearn()
    shape = _image_shape(result)
    height, width = shape[:2]
    table = result.table
    rows = [int(i) for i in table.index] if where is None else result._rows_where(where)
    if not rows:
        raise ValueError("where: expected at least one image to cluster, got none")
    classes = table.loc[rows, by]
    if classes.isna().any():
        raise ValueError(
            f"by: the {by!r} column is missing for {int(classes.isna().sum())} of the images; "
            "cluster by 'target' or 'predicted', or give where= without them"
        )
    factor = max(1, math.ceil(max(height, width) / size))

    # First pass: the reduced maps only.
    features = np.zeros((len(rows), math.ceil(height / factor) * math.ceil(width / factor)))
    position = {row: i for i, row in enumerate(sorted(rows))}
    for row, arrays in result.iter_arrays(("attributions",), rows):
        features[position[row]] = reduced_map(arrays["attributions"], factor)

    ordered = np.array(sorted(rows), np.int64)
    class_of = classes.reindex(ordered).to_numpy(np.int64)
    cluster_of = np.zeros(len(ordered), np.int64)
    summary_rows: list[tuple[int, int, int]] = []
    eigenvalues = {}
    for value in sorted(set(class_of.tolist())):
        members = np.flatnonzero(class_of == value)
        labels, chosen, values = _cluster_class(features[members], k, max_k, neighbors, seed)
        eigenvalues[value] = values
        groups = [members[labels == label] for label in np.unique(labels)]
        groups.sort(key=lambda group: (-len(group), int(ordered[group[0]])))
        for group in groups:
            cluster_of[group] = len(summary_rows)
            summary_rows.append((value, len(group), chosen))

    # Second pass: every cluster's full-size maps and images, added up.
    count = len(summary_rows)
    assert result._layout is not None  # _image_shape checked it
    map_sums = np.zeros((count, *result._layout.map_shape))
    image_sums = np.zeros((count, *shape))
    cluster_at = dict(zip(ordered.tolist(), cluster_of.tolist(), strict=True))
    for row, arrays in result.iter_arrays(("inputs", "attributions"), rows):
        cluster = cluster_at[row]
        map_sums[cluster] += arrays["attributions"]
        image_sums[cluster] += arrays["inputs"]
    sizes = np.array([size_ for _, size_, _ in summary_rows], np.float64).reshape(
        -1, *([1] * len(shape))
    )
    index = pd.Index(ordered, name="image")
    return MapClusters(
        path=result.path,
        by=by,
        table=pd.DataFrame({"cluster": cluster_of, "class": class_of}, index=index),
        summary=pd.DataFrame(
            summary_rows,
            columns=["class", "size", "k"],
            index=pd.RangeIndex(count, name="cluster"),
        ),
        mean_maps=(map_sums / np.maximum(sizes, 1)).astype(np.float32),
        mean_images=(image_sums / np.maximum(sizes, 1)).astype(np.float32),
        eigenvalues=eigenvalues,
        size=size,
        title="IG" if result.explainer == IG else REGISTRY[result.explainer].title,
    )


def _image_shape(result: DatasetResult) -> tuple[int, int, int]:
    layout = result._layout
    if layout is None:
        raise ValueError(f"result: the store '{result.path}' holds no image yet")
    return layout.image_shape


def shared_interest(
    result: DatasetResult | str | os.PathLike, masks: Any, share: float = TOP_SHARE
) -> Any:
    """Shared Interest's columns for a store already written, from its masks.

    Parameters
    ----------
    result : DatasetResult or path
    masks : array (N, H, W) or sequence of (H, W) boolean masks
        One per image of the dataset, indexed as the images.
    share : float in (0, 1]
        The salient region: this share of the pixels, most positively attributed.

    Returns
    -------
    pandas.DataFrame
        Indexed by image: ``ground_truth_coverage`` (``|S∩G| / |G|``),
        ``saliency_coverage`` (``|S∩G| / |S|``) and ``mask_iou``, the
        values ``explain_dataset(..., masks=...)`` stores as columns.

    Examples
    --------
    >>> igw.shared_interest(result, masks).sort_values("mask_iou").head()  # doctest: +SKIP
    """
    import pandas as pd

    from ..validation import check_number

    result = as_dataset_result("result", result)
    share = check_number("share", share, low=0.0, high=1.0)
    if share == 0:
        raise ValueError(f"share: expected a number in (0, 1], got {share!r}")
    if isinstance(masks, (str, bytes)) or not hasattr(masks, "__getitem__"):
        raise TypeError(
            "masks: expected an array (N, H, W) or a sequence of masks indexed as the images, "
            f"got {type(masks).__name__}"
        )
    height, width = _image_shape(result)[:2]
    rows, values = [], []
    for row, arrays in result.iter_arrays(("attributions",)):
        try:
            mask = np.asarray(masks[row])
        except (IndexError, KeyError):
            raise ValueError(f"masks: no mask for image {row}") from None
        if mask.shape != (height, width):
            raise ValueError(f"masks[{row}]: expected shape {(height, width)}, got {mask.shape}")
        positive = positive_part(arrays["attributions"])
        rows.append(row)
        values.append(shared_interest_of(positive, mask.astype(bool), share))
    return pd.DataFrame(
        values or np.zeros((0, 3)),
        columns=list(SHARED_INTEREST_COLUMNS),
        index=pd.Index(rows, dtype="int64", name="image"),
    )


__all__ = ["MapClusters", "cluster_maps", "shared_interest"]
