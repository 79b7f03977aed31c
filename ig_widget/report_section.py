"""What a finding contributes to an audit report (``DatasetResult.report``).

A result that belongs in a report (a comparison of two stores, clusters of
maps, a sanity check, ...) has a ``report_section()`` method returning a
``ReportSection``. The report owns the page: it escapes every text, encodes
the pictures and lays the sections out; a section is plain data, so each
finding decides what to show without knowing how the page is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Table:
    """A small table: a caption, column names and rows of plain values.

    Values are ``str``, ``int``, ``float``, ``bool`` or ``None``; the report
    writes them as text (never as HTML).
    """

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str | int | float | bool | None, ...], ...]


@dataclass(frozen=True)
class Picture:
    """A PNG with a caption (a mean map, a strip of maps, a thumbnail)."""

    caption: str
    png: bytes


@dataclass(frozen=True)
class ReportSection:
    """One section of the report: a title, sentences, tables and pictures."""

    title: str
    summary: tuple[str, ...] = ()
    tables: tuple[Table, ...] = field(default_factory=tuple)
    pictures: tuple[Picture, ...] = field(default_factory=tuple)


class Reportable(Protocol):
    """Anything that can add a section to the report."""

    def report_section(self) -> ReportSection: ...
