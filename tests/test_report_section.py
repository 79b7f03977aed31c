"""The report's section contract: plain, immutable data."""

import dataclasses

import pytest

from ig_widget.report_section import Picture, ReportSection, Table


def test_a_section_is_immutable_plain_data() -> None:
    section = ReportSection(
        title="Drift",
        summary=("3 of 10 predictions changed.",),
        tables=(Table("worst", ("index", "iou"), ((4, 0.1),)),),
        pictures=(Picture("mean map", b"\x89PNG"),),
    )
    assert section.tables[0].rows[0] == (4, 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        section.title = "other"  # type: ignore[misc]
