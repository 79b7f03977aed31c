"""Snapshots of the widget: a PNG of the three panels and a standalone HTML page.

Both write exactly one file, where asked, atomically (``write_file``). The
HTML page carries the browser code, its styles and the shown data in one
file, so it opens offline from a ``file://`` URL; the data is JSON inside
``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped, so
no text in it (class names from a model, say) can end the script element or
be read as HTML.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .render import (
    KeyEntry,
    colour_key,
    ground_luma,
    key_labels,
    outline_region,
    render_maps,
    validate_render_options,
)
from .validation import cannot_write, check_path_for_writing

INPUT_TITLE = "Input"
# Small images are enlarged (nearest neighbour, so pixels stay crisp) until a
# panel is at least this many pixels on its longer side.
MIN_PANEL_PIXELS = 256
MARGIN = 14
FONT_SIZE = 15
KEY_FONT_SIZE = 12
KEY_BAR_PIXELS = 12
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (33, 33, 33)
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
PNG_SUFFIXES = (".png",)
HTML_SUFFIXES = (".html", ".htm")


def write_file(
    path: str | Path,
    contents: Callable[[], bytes],
    suffixes: Sequence[str],
    name: str = "path",
) -> Path:
    """Write ``contents()`` to ``path`` atomically and return ``Path(path)``.

    ``path`` is checked first (``check_path_for_writing``: a regular file
    ending in one of ``suffixes``; a symbolic link writes the file it points
    to), so a bad path costs no rendering. The bytes go to a temporary file
    in the destination's folder, which then replaces the destination in one
    rename: a reader sees the old file or the new one, never a part, and a
    failed write (a full disk) leaves the previous file as it was and no
    temporary file behind. A replaced file keeps its permissions; a new one
    gets the usual ones (0o666 less the umask).

    Raises
    ------
    OSError
        When the operating system refuses; the message names ``name`` and the
        path, and the original error is chained.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_file(Path(folder) / "note.html", lambda: b"<p>hi</p>", HTML_SUFFIXES).read_bytes()
    b'<p>hi</p>'
    """
    destination = check_path_for_writing(path, name, suffixes)
    data = contents()
    try:
        _replace_atomically(destination, data)
    except OSError as exc:
        error = OSError(cannot_write(name, os.fsdecode(path), exc))
        error.errno = exc.errno
        raise error from exc
    return Path(path)


def _replace_atomically(destination: Path, data: bytes) -> None:
    try:
        mode: int | None = stat.S_IMODE(os.stat(destination).st_mode)
    except FileNotFoundError:
        mode = None
    while True:
        # Shortened so that a name near the file system's limit still fits.
        temporary = destination.with_name(f".{destination.name[:64]}.{secrets.token_hex(4)}.tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        try:
            if mode is not None:
                os.chmod(temporary, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def panels_png(
    image_rgb: np.ndarray,
    panels: Sequence[tuple[str, tuple[np.ndarray, np.ndarray]]],
    render_options: dict[str, Any],
    heading: str,
    region: np.ndarray | None = None,
) -> bytes:
    """The input and the attribution panels side by side, titled, under a one-line
    heading, as PNG bytes.

    Under each attribution panel, its colour key: per drawn sign, what the
    colour means, the colour bar, and the values and shares of the total
    its ends stand for (see ``igw.render.colour_key``).

    Parameters
    ----------
    image_rgb : ndarray, uint8, (H, W, 3)
        The display image.
    panels : sequence of (title, (positive, negative))
        The attribution panels after the input, in order: each title and its
        float32 (H, W) channel-mean maps.
    render_options : dict
        As for ``igw.render``.
    heading : str
        Drawn as plain text above the panels.
    region : ndarray, bool, (H', W'), optional
        A region target's region, outlined on the input (``render.outline_region``).

    Examples
    --------
    >>> zero = np.zeros((4, 4), np.float32)
    >>> png = panels_png(np.zeros((4, 4, 3), np.uint8), [("Normal gradients", (zero, zero)),
    ...                  ("Integrated gradients", (zero, zero))], {}, "demo")
    >>> png[:4]
    b'\\x89PNG'
    """
    from PIL import Image, ImageDraw, ImageFont

    titles = [INPUT_TITLE]
    pictures = [image_rgb if region is None else outline_region(image_rgb, region)]
    keys: list[list[KeyEntry]] = [[]]
    for title, maps in panels:
        titles.append(title)
        pictures.append(render_maps(image_rgb, *maps, **render_options))
        ground = ground_luma(image_rgb, validate_render_options(**render_options)["overlay"])
        keys.append(colour_key(*maps, ground=ground, **render_options))
    height, width = image_rgb.shape[:2]
    scale = max(1, math.ceil(MIN_PANEL_PIXELS / max(height, width)))
    panel_h, panel_w = height * scale, width * scale
    font = ImageFont.load_default(size=FONT_SIZE)
    key_font = ImageFont.load_default(size=KEY_FONT_SIZE)
    line = FONT_SIZE + 8
    key_line = KEY_FONT_SIZE + 4
    # Per key entry: its meaning, the bar, the end values, their shares, the concentration.
    entry_height = 5 * key_line + KEY_BAR_PIXELS + MARGIN // 2
    keys_height = max(len(entries) for entries in keys) * entry_height
    canvas = Image.new(
        "RGB",
        (
            len(pictures) * (panel_w + MARGIN) + MARGIN,
            panel_h + 2 * line + 2 * MARGIN + keys_height,
        ),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(canvas)
    draw.text((MARGIN, MARGIN), heading, fill=TEXT_COLOR, font=font)
    top = MARGIN + 2 * line
    for index, (title, picture) in enumerate(zip(titles, pictures, strict=True)):
        left = MARGIN + index * (panel_w + MARGIN)
        draw.text((left, top - line), title, fill=TEXT_COLOR, font=font)
        enlarged = Image.fromarray(picture).resize((panel_w, panel_h), Image.Resampling.NEAREST)
        canvas.paste(enlarged, (left, top))
        for row, entry in enumerate(keys[index]):
            labels = key_labels(entry)
            y = top + panel_h + MARGIN // 2 + row * entry_height
            draw.text((left, y), labels["meaning"], TEXT_COLOR, key_font)
            bar = Image.fromarray(np.asarray(entry["colors"], np.uint8)[None])
            bar = bar.resize((panel_w, KEY_BAR_PIXELS), Image.Resampling.NEAREST)
            canvas.paste(bar, (left, y + key_line))
            y += key_line + KEY_BAR_PIXELS + 2
            # The end values under the bar's ends; the sentences, each on its line.
            draw.text((left, y), labels["low"], fill=TEXT_COLOR, font=key_font)
            draw.text((left + panel_w, y), labels["high"], TEXT_COLOR, key_font, anchor="ra")
            for offset, text in enumerate(
                (labels["low_share"], labels["high_share"], labels["top"]), start=1
            ):
                draw.text((left, y + offset * key_line), text, fill=TEXT_COLOR, font=key_font)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def embedded_json(data: Any) -> str:
    """JSON that is safe inside an HTML ``<script>`` element.

    Examples
    --------
    >>> embedded_json({"name": "</script>"})
    '{"name": "\\\\u003c/script\\\\u003e"}'
    """
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return "".join(_JSON_ESCAPES.get(char, char) for char in text)


def _inline(text: str, closing_tag: str, source: Path) -> str:
    if closing_tag in text.lower():
        raise RuntimeError(f"{source} contains '{closing_tag}' and cannot be inlined; rebuild it")
    return text


def standalone_html(state: dict[str, Any], buffers: dict[str, bytes], static_dir: Path) -> str:
    """One self-contained HTML page showing the widget ``state``.

    Parameters
    ----------
    state : dict
        JSON-serialisable widget state (trait name -> value).
    buffers : dict
        Binary traits (name -> bytes), embedded as base64.
    static_dir : Path
        Folder holding the built ``standalone.js`` and ``widget.css``.

    Returns
    -------
    str
        The page.

    Examples
    --------
    >>> page = standalone_html({"error": ""}, {}, Path("ig_widget/static"))  # doctest: +SKIP
    >>> page.startswith("<!DOCTYPE html>")  # doctest: +SKIP
    True
    """
    script_path = static_dir / "standalone.js"
    style_path = static_dir / "widget.css"
    script = _inline(script_path.read_text("utf-8"), "</script", script_path)
    style = _inline(style_path.read_text("utf-8"), "</style", style_path)
    data = {
        "state": state,
        "buffers": {
            name: base64.b64encode(value).decode("ascii") for name, value in buffers.items()
        },
    }
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Integrated gradients (ig-widget)</title>\n"
        f"<style>\n{style}\n</style>\n</head>\n"
        '<body class="igw-page">\n<main id="igw-root"></main>\n'
        f'<script type="application/json" id="igw-data">{embedded_json(data)}</script>\n'
        f"<script>\n{script}\n</script>\n</body>\n</html>\n"
    )
