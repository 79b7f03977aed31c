"""The browser code's constants and option types are the Python side's, not copies."""

from __future__ import annotations

import re

from ig_widget.render import RENDER_DEFAULTS

from .typescript import OUTPUT, typescript


def test_generated_typescript_is_current():
    # Fails when Python changed and js/src/generated.ts was not regenerated,
    # or when the file was edited by hand.
    assert OUTPUT.read_text(encoding="utf-8") == typescript(), (
        "js/src/generated.ts is out of date: run `python -m tests.typescript js/src/generated.ts`"
    )


def test_generated_render_options_list_every_python_option():
    text = typescript()
    interface = re.search(r"export interface RenderOptions \{(.*?)\}", text, re.S).group(1)
    assert re.findall(r"^\s+(\w+):", interface, re.M) == list(RENDER_DEFAULTS)


def test_the_browser_code_copies_no_renderer_constant():
    # Every renderer constant reaches the browser through generated.ts only.
    source = (OUTPUT.parent / "render.ts").read_text(encoding="utf-8")
    for name in ("RENDER_DEFAULTS", "MAX_STRUCTURE", "OVERLAY_WEIGHT", "BINARIZE_THRESHOLD"):
        assert not re.search(rf"\bconst {name}\b", source), name
