"""docs/architecture.md names every module, and every file it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
# Folders whose files a reader may look for by the doc's names.
FOLDERS = ("ig_widget", "js", "tests", "benchmarks", "notebooks", "docs")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
NAMED_FILE = re.compile(r"[\w./-]*\w\.(?:py|ts|css|mjs|md)\b")


def modules() -> list[str]:
    """Every module file of the Python package and the front end, relative to the root."""
    python = [p for p in (ROOT / "ig_widget").rglob("*.py") if "__pycache__" not in p.parts]
    front = [*(ROOT / "js" / "src").rglob("*.ts"), *(ROOT / "js" / "src").rglob("*.css")]
    return sorted(p.relative_to(ROOT).as_posix() for p in python + front)


def files() -> set[str]:
    """The repository's files (not its dependencies or build outputs), relative to the root."""
    found = {p.name for p in ROOT.iterdir() if p.is_file()}
    for folder in FOLDERS:
        found |= {
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "node_modules" not in p.parts and "__pycache__" not in p.parts
        }
    return found


def prose(text: str) -> str:
    """``text`` without its fenced code blocks (their examples name files to be written)."""
    return FENCE.sub("", text)


def unnamed_modules(text: str) -> list[str]:
    """The modules ``text`` does not name by their path in backquotes."""
    return [module for module in modules() if f"`{module}`" not in text]


def absent_files(text: str) -> list[str]:
    """The files ``text`` names (outside code examples) that exist nowhere: by their
    path from the root, or as its end (``widget/state.py``)."""
    existing = files()
    return sorted(
        name
        for name in set(NAMED_FILE.findall(prose(text)))
        if name not in existing and not any(path.endswith(f"/{name}") for path in existing)
    )


def test_every_module_is_named_by_its_path_in_the_architecture_doc():
    missing = unnamed_modules(DOC.read_text())
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_every_file_the_architecture_doc_names_exists():
    absent = absent_files(DOC.read_text())
    assert not absent, f"docs/architecture.md names files that do not exist: {absent}"


def test_the_readme_links_to_the_module_map_instead_of_keeping_its_own():
    readme = (ROOT / "README.md").read_text()
    assert "docs/architecture.md" in readme
    map_lines = [
        line
        for block in FENCE.findall(readme)
        for line in block.splitlines()
        if re.match(r"^\s*[\w-]+(?:\.py|\.ts|/)\s{2,}\w", line)
    ]
    assert not map_lines, f"README.md keeps a module map: {map_lines[:3]}"


def test_the_checks_see_a_missing_module_and_a_moved_file():
    """A doc where faithfulness.py moved to faith.py fails both checks."""
    text = DOC.read_text().replace("ig_widget/faithfulness.py", "ig_widget/faith.py")
    assert unnamed_modules(text) == ["ig_widget/faithfulness.py"]
    assert absent_files(text) == ["ig_widget/faith.py"]
