"""Explaining a whole dataset: ``explain_dataset``, its stored ``DatasetResult``, the ``Gallery``.

Needs the ``dataset`` extra (pandas, pyarrow, zarr, fsspec, tqdm): ``pip
install 'ig-widget[dataset]'``; running on Ray needs ``ig-widget[ray]``.
Modules: ``sources`` (streaming any input), ``compute`` (one chunk, as every
executor runs it), ``columns`` (the table's columns), ``store`` (Parquet and
Zarr, written chunk by chunk), ``result``, ``explain`` (the local executor),
``ray_executor``, ``gallery``.
"""

from __future__ import annotations

from .compute import ModelFactory
from .explain import explain_dataset
from .result import DatasetResult, open_dataset

__all__ = ["DatasetResult", "ModelFactory", "explain_dataset", "open_dataset"]
