"""``Gallery``: browse a dataset's attributions, sorted and filtered by any table column.

The browser shows a virtualised grid (``js/src/gallery.ts``): only the cells
in view exist, and their thumbnails (the store's reduced display image and IG
channel maps) are sent when they come into view, as two binary buffers per
request. Display options are the renderer's and redraw every thumbnail in the
browser. Sorting and filtering run here on the pandas table; the browser gets
the resulting order of images. Clicking an image opens its three-panel
``IGWidget`` below the grid: live (recomputable) when a model is given,
otherwise shown from the stored maps. With ``clusters`` (from
``igw.cluster_maps``) the table gains a ``cluster`` column and a strip above
the grid shows each cluster's mean image and mean map; choosing one filters
the grid to its members.

Given a ``DatasetComparison`` (``igw.compare_datasets``), the grid shows
store b's pictures, its table has b's columns and the comparison's (rank
correlation, top-pixel IoU, prediction and mask-share changes), and an
opened image shows the two stores' views side by side (a left, b right),
both following the gallery's display options.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import anywidget
import numpy as np
import traitlets

from ..engine import IGResult
from ..options import check_callable, check_class_names, check_model
from ..render import validate_render_options
from ..validation import as_image, check_choice
from ..widget import IGWidget
from ..widget.frontend import FrontEnd
from ..widget.options import DISPLAY_TRAITS, display_traits
from ..widget.state import DisplayOptions, ignore_message, send_back, split_update
from .clusters import MapClusters
from .drift import DatasetComparison
from .result import DatasetResult
from .sources import _raws, carries_labels

OPERATORS = {
    "number": ("<", "<=", ">", ">=", "==", "!="),
    "integer": ("==", "!=", "<", "<=", ">", ">="),
    "class": ("==", "!="),
    "boolean": ("==",),
    "text": ("contains", "==", "!="),
}
CLASS_COLUMNS = ("label", "predicted", "target", "predicted_a", "predicted_b")
# What a comparison's thumbnails carry in their captions, besides store b's values.
COMPARISON_CAPTIONS = ("rank_correlation", "top_iou")
# The most thumbnails one request may ask for (the browser asks for fewer).
MAX_REQUEST = 256


def column_kind(name: str, dtype: Any) -> str:
    """How the gallery treats a table column: number, integer, class, boolean or text.

    Examples
    --------
    >>> import pandas as pd
    >>> column_kind("label", pd.Int64Dtype()), column_kind("delta", np.dtype("float64"))
    ('class', 'number')
    """
    import pandas as pd

    if name in CLASS_COLUMNS:
        return "class"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return "text"


def _random_access(images: Any) -> list[Any]:
    """Loaders of the images of an array, a sequence or a folder (not of a one-pass iterable)."""
    if carries_labels(images):
        raise TypeError(
            "images: expected an array, a sequence or a folder (indexed like the table), "
            f"got {type(images).__name__}; without images the gallery uses the store's copies"
        )
    return list(_raws(images, "images"))


class Gallery(DisplayOptions, FrontEnd):
    """A grid of a dataset's images and their maps, to find where the model looks.

    Parameters
    ----------
    result : DatasetResult, DatasetComparison or path
        From ``igw.explain_dataset`` (or ``igw.open_dataset``), or two
        stores compared by ``igw.compare_datasets``: then the table has the
        comparison's columns too, and an opened image shows both stores'
        views side by side (stored, so no ``model``).
    images : optional
        The dataset's images (an array, a sequence or a folder, indexed like
        the table) for the three-panel view; by default the store's copies.
    model : optional
        The model the dataset was explained with: the three-panel view is then
        live (another class, other options recompute). Without it, the view
        shows the stored result.
    preprocess : callable, optional
        The ``preprocess`` the dataset was explained with, for the live view.
    class_names : sequence of str, optional
        Names for the label, predicted and target columns.
    sort_by : str, optional
        Table column to sort by; default ``delta``, or ``score`` for a
        method without completeness (Grad-CAM, occlusion, ...).
    descending : bool
        Largest values first.
    filters : list of (column, operator, value)
        Operators: ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=`` (numbers),
        ``contains`` (text); for example ``[("correct", "==", False)]``.
    clusters : MapClusters, optional
        From ``igw.cluster_maps(result)``: a ``cluster`` column to sort and
        filter by, and each cluster's mean map above the grid (a click
        shows its members).
    **render_options
        Display options, as for ``igw.render``; they apply to every thumbnail
        and to the three-panel view.

    Examples
    --------
    >>> g = igw.Gallery(result, class_names=names, sort_by="mask_share")  # doctest: +SKIP
    >>> g.filters = [("correct", "==", False)]  # doctest: +SKIP
    >>> g.open_image(12)  # doctest: +SKIP
    >>> drift = igw.compare_datasets(before, after, names=("before", "after"))  # doctest: +SKIP
    >>> igw.Gallery(drift, sort_by="rank_correlation", descending=False)  # doctest: +SKIP
    """

    # The display options are IGWidget's typed traits (DisplayOptions).
    FRONT_END = ("gallery.js", "gallery.css")

    columns: traitlets.List[list[str]] = traitlets.List().tag(sync=True)
    sort_by = traitlets.Unicode("delta").tag(sync=True)
    descending = traitlets.Bool(True).tag(sync=True)
    filters: traitlets.List[list[Any]] = traitlets.List().tag(sync=True)
    order = traitlets.Bytes(b"").tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    class_names: traitlets.List[str] = traitlets.List().tag(sync=True)
    thumbnail_size = traitlets.List([0, 0]).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    # Sent as anywidget's "anywidget:<model id>" reference, which host.getWidget reads.
    detail = anywidget.WidgetTrait().tag(sync=True)
    # A comparison's: store a's view, shown left of ``detail`` (store b's), and the two names.
    detail_a = anywidget.WidgetTrait().tag(sync=True)
    compared_names: traitlets.List[str] = traitlets.List().tag(sync=True)
    live = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    # Per cluster [number, class, size]; their mean pictures as the thumbnails are sent.
    clusters: traitlets.List[list[int]] = traitlets.List().tag(sync=True)
    cluster_rgb = traitlets.Bytes(b"").tag(sync=True)
    cluster_maps = traitlets.Bytes(b"").tag(sync=True)

    def __init__(
        self,
        result: DatasetResult | DatasetComparison | str | os.PathLike,
        *,
        images: Any = None,
        model: Any = None,
        preprocess: Any = None,
        class_names: Sequence[str] | None = None,
        sort_by: str | None = None,
        descending: bool = True,
        filters: Sequence[Sequence[Any]] = (),
        clusters: MapClusters | None = None,
        **render_options: Any,
    ) -> None:
        if isinstance(result, (str, os.PathLike)):
            result = DatasetResult(result)
        self._comparison = result if isinstance(result, DatasetComparison) else None
        if self._comparison is not None:
            if model is not None:
                raise ValueError(
                    "model: a comparison's gallery shows the two stored results; give no model "
                    "(igw.Gallery(comparison.b, model=...) explores one store live)"
                )
            result = self._comparison.b
        if not isinstance(result, DatasetResult):
            raise TypeError(
                "result: expected a DatasetResult, a DatasetComparison or a store path, got "
                f"{type(result).__name__}"
            )
        if model is not None:
            check_model(model)
        check_callable("preprocess", preprocess)
        self._result = result
        self._table = result.table
        if self._comparison is not None:
            compared = self._comparison.table
            self._table = self._table.join(
                compared.drop(columns=list(self._table.columns), errors="ignore")
            )
        self._images = images
        self._image_files = None if images is None else _random_access(images)
        self._model = model
        self._preprocess = preprocess
        names = check_class_names(class_names) or []
        shown_clusters = self._take_clusters(clusters)
        columns = [[name, column_kind(name, dtype)] for name, dtype in self._table.dtypes.items()]
        self._kinds = dict((name, kind) for name, kind in columns)
        display = display_traits(validate_render_options(**render_options))
        if sort_by is None:
            sort_by = "delta" if "delta" in self._kinds else "score"
        view = self._checked_view(sort_by, descending, filters)
        super().__init__(
            **display,
            columns=columns,
            class_names=names,
            total=len(self._table),
            thumbnail_size=list(result.thumbnail_shape),
            live=model is not None,
            compared_names=[] if self._comparison is None else list(self._comparison.names),
            **view,
            order=self._order(view),
            **shown_clusters,
        )
        self.on_msg(self._handle_message)

    def _take_clusters(self, clusters: Any) -> dict[str, Any]:
        """The cluster column joined to the table, and the strip's traits."""
        if clusters is None:
            return {}
        if not isinstance(clusters, MapClusters):
            raise TypeError(
                f"clusters: expected MapClusters (from igw.cluster_maps), got "
                f"{type(clusters).__name__}"
            )
        if (
            clusters.path != self._result.path
            or not clusters.table.index.isin(self._table.index).all()
        ):
            raise ValueError(
                f"clusters: computed from the store '{clusters.path}', not from this "
                f"gallery's '{self._result.path}'"
            )
        self._table["cluster"] = (
            clusters.table["cluster"].reindex(self._table.index).astype("Int64")
        )
        rgb, maps = clusters.thumbnails()
        return {
            "clusters": [
                [int(number), int(row["class"]), int(row["size"])]
                for number, row in clusters.summary.iterrows()
            ],
            "cluster_rgb": rgb.astype(np.uint8).tobytes(),
            "cluster_maps": maps.astype(np.float32).tobytes(),
        }

    # -- sorting and filtering -------------------------------------------------

    def _checked_filter(self, filter_: Any) -> list[Any]:
        if (
            isinstance(filter_, (str, bytes))
            or not isinstance(filter_, Sequence)
            or len(filter_) != 3
        ):
            raise ValueError(
                f"filters: expected (column, operator, value) triples, got {filter_!r}"
            )
        column, operator, value = filter_
        column = check_choice("filters", column, list(self._kinds))
        kind = self._kinds[column]
        operator = check_choice(f"filters ({column})", operator, OPERATORS[kind])
        if kind == "text":
            if not isinstance(value, str):
                raise TypeError(f"filters ({column}): expected text to compare with, got {value!r}")
        elif kind == "boolean":
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"filters ({column}): expected true or false, got {value!r}")
            value = bool(value)
        elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"filters ({column}): expected a number, got {value!r}")
        elif not np.isfinite(value):
            raise ValueError(f"filters ({column}): expected a finite number, got {value!r}")
        return [column, operator, value]

    def _checked_view(self, sort_by: Any, descending: Any, filters: Any) -> dict[str, Any]:
        sort_by = check_choice("sort_by", sort_by, list(self._kinds))
        if not isinstance(descending, (bool, np.bool_)):
            raise TypeError(f"descending: expected True or False, got {descending!r}")
        if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence):
            raise TypeError(
                f"filters: expected a list of (column, operator, value), got {filters!r}"
            )
        return {
            "sort_by": sort_by,
            "descending": bool(descending),
            "filters": [self._checked_filter(f) for f in filters],
        }

    def _view_table(self, view: dict[str, Any]) -> Any:
        table = self._table
        keep = np.ones(len(table), bool)
        for column, operator, value in view["filters"]:
            values = table[column]
            if operator == "contains":
                matches = values.str.contains(value, regex=False)
            else:
                matches = {
                    "<": values < value,
                    "<=": values <= value,
                    ">": values > value,
                    ">=": values >= value,
                    "==": values == value,
                    "!=": values != value,
                }[operator]
            keep &= matches.fillna(False).to_numpy(bool)
        return table[keep].sort_values(
            view["sort_by"], ascending=not view["descending"], na_position="last", kind="stable"
        )

    def _order(self, view: dict[str, Any]) -> bytes:
        return self._view_table(view).index.to_numpy(np.int32).tobytes()

    @traitlets.validate("sort_by", "descending", "filters")
    def _validate_view(self, proposal: dict[str, Any]) -> Any:
        name = proposal["trait"].name
        current = {"sort_by": self.sort_by, "descending": self.descending, "filters": self.filters}
        return self._checked_view(**{**current, name: proposal["value"]})[name]

    @traitlets.observe("sort_by", "descending", "filters")
    def _reorder(self, _change: dict[str, Any]) -> None:
        view = {"sort_by": self.sort_by, "descending": self.descending, "filters": self.filters}
        self.order = self._order(view)

    @traitlets.observe(*DISPLAY_TRAITS)
    def _follow_display(self, change: dict[str, Any]) -> None:
        # The open three-panel views show the gallery's display options too.
        for view in (self.detail, self.detail_a):
            if view is not None:
                setattr(view, change["name"], change["new"])

    def shown(self) -> Any:
        """The table rows shown, in the order shown (a pandas DataFrame).

        Examples
        --------
        >>> g.shown().head()  # doctest: +SKIP
        """
        return self._table.loc[np.frombuffer(self.order, np.int32)]

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Apply display options from the browser; anything else, or a bad value, is refused."""
        accepted, refused, problem = split_update(sync_data, DISPLAY_TRAITS)
        try:
            checked = self.checked_options(accepted)
        except (TypeError, ValueError) as exc:
            problem, refused, accepted = str(exc), refused + list(accepted), {}
        else:
            accepted = {name: checked[name] for name in accepted}
        super().set_state(accepted)
        self.error = problem
        send_back(self, refused)

    # -- messages from the browser ---------------------------------------------------

    def _handle_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "thumbnails":
                self._send_thumbnails(self._requested(content.get("indices")))
            elif kind == "view":
                view = self._checked_view(
                    content.get("sort_by"), content.get("descending"), content.get("filters")
                )
                with self.hold_trait_notifications():
                    self.sort_by, self.descending, self.filters = (
                        view["sort_by"],
                        view["descending"],
                        view["filters"],
                    )
                self.error = ""
            elif kind == "open":
                [index] = self._requested([content.get("index")], name="index")
                self.open_image(index)
            elif kind == "close":
                self.close_detail()
            else:
                raise ValueError(
                    "expected a 'thumbnails', 'view', 'open' or 'close' message, "
                    f"got {content!r:.80}"
                )
        except (TypeError, ValueError, IndexError) as exc:
            ignore_message(self, str(exc))
            # The same refusal again answers its message too, and traitlets sends only a
            # change: cleared first (the browser waits for an answer to build on).
            self.error = ""
            self.error = str(exc)

    def _requested(self, indices: Any, name: str = "indices") -> list[int]:
        """The image indices a browser message asks for, each a row of the table.

        The browser only asks for indices from ``order``: anything else
        (-1, 2.5, "3") is a malformed message, refused naming ``name``.
        """
        if not isinstance(indices, list) or len(indices) > MAX_REQUEST:
            raise ValueError(f"{name}: expected a list of at most {MAX_REQUEST} image indices")
        for index in indices:
            if type(index) is not int or index not in self._table.index:
                raise ValueError(f"{name}: expected indices of images in the table, got {index!r}")
        return indices

    def _send_thumbnails(self, indices: list[int]) -> None:
        rgb, maps = self._result.thumbnails(indices)
        self.send(
            {"type": "thumbnails", "indices": indices, "captions": self._captions(indices)},
            [rgb.astype(np.uint8).tobytes(), maps.astype(np.float32).tobytes()],
        )

    def _captions(self, indices: list[int]) -> list[dict[str, Any]]:
        """Each image's caption values, a column at a time (a row at a time costs the
        kernel more than reading the thumbnails while the grid scrolls)."""
        rows = self._table.loc[indices]

        def column(name: str, kind: Any) -> list[Any]:
            pairs = zip(rows[name].tolist(), rows[name].isna().tolist(), strict=True)
            return [None if gone else kind(value) for value, gone in pairs]

        columns = {
            "source": [str(value) for value in rows["source"].tolist()],
            "label": column("label", int),
            "predicted": [int(value) for value in rows["predicted"].tolist()],
            "target": [int(value) for value in rows["target"].tolist()],
            "score": [float(value) for value in rows["score"].tolist()],
            "correct": column("correct", bool),
        }
        if "delta" in rows:  # integrated gradients' only
            columns["delta"] = [float(value) for value in rows["delta"].tolist()]
        for name in ("mask_share", *COMPARISON_CAPTIONS):
            if name in rows:
                columns[name] = column(name, float)
        if "cluster" in rows:
            columns["cluster"] = column("cluster", int)
        rows_of_values = zip(*columns.values(), strict=True)
        return [dict(zip(columns, values, strict=True)) for values in rows_of_values]

    # -- the three-panel view ------------------------------------------------------------

    def _image(self, index: int) -> np.ndarray:
        if self._image_files is None:
            return self._result.image(index)
        if not 0 <= index < len(self._image_files):
            raise IndexError(f"images: no image {index} (it has {len(self._image_files)})")
        return as_image(self._image_files[index].load(), name=f"images[{index}]")

    def open_image(self, index: int) -> IGWidget:
        """Show image ``index``'s three-panel view below the grid, and return it.

        Live when the gallery has a model: another class or other compute
        options recompute; otherwise the view shows the stored result. A
        comparison's gallery returns store b's view; store a's is
        ``detail_a``, shown to its left.

        Examples
        --------
        >>> g.open_image(int(g.shown().index[0]))  # doctest: +SKIP
        """
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an image index, got {index!r}")
        index = int(index)
        image = self._image(index)
        widget = self._view(self._result, index, image)
        other = None if self._comparison is None else self._view(self._comparison.a, index, image)
        previous = (self.detail, self.detail_a)
        with self.hold_sync():
            self.selected = index
            self.detail = widget
            self.detail_a = other
        for view in previous:
            if view is not None:
                view.close()
        return widget

    def _view(self, result: DatasetResult, index: int, image: np.ndarray) -> IGWidget:
        """Image ``index``'s view of ``result``, with the gallery's display options: the
        input, the plain gradient and integrated gradients, or for another method's store
        the input and its map (titled by the method)."""
        options = result.options
        baseline = result.baseline()
        stored = result[index]
        extra: dict[str, Any] = {}
        if isinstance(stored, IGResult):
            extra["baseline"] = options["baseline"] if baseline is None else baseline
        else:
            extra["explainer"] = stored.explainer
            # A live view recomputes with the parameters the store was given (an array
            # one is recorded by its fingerprint only: the method's default then).
            given = {
                name: value
                for name, value in (options.get("parameters") or {}).items()
                if not isinstance(value, dict)
            }
            if self._model is not None and given:
                extra["explainer_options"] = {stored.explainer: given}
        # The stored result shows at once; with a model, other choices recompute.
        return IGWidget(
            self._model,
            image,
            preprocess=self._preprocess,
            class_names=list(self.class_names) or None,
            result=stored,
            **extra,
            **self.render_options(),
        )

    def close(self) -> None:
        """Close the grid and its open three-panel view (ipywidgets keeps an open one alive).

        Examples
        --------
        >>> g.close()  # doctest: +SKIP
        """
        if self.detail is not None:
            self.close_detail()
        super().close()

    def close_detail(self) -> None:
        """Hide the three-panel view (both, for a comparison)."""
        previous = (self.detail, self.detail_a)
        with self.hold_sync():
            self.selected = -1
            self.detail = None
            self.detail_a = None
        for view in previous:
            if view is not None:
                view.close()
