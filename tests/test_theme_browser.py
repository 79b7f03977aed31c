"""Every host's theme: the view and the Gallery take JupyterLab's colours (light and
dark), marimo's dark theme and VS Code's Light+ and Dark+ (as its notebook webview
gives them), and every text keeps 4.5:1 contrast (WCAG AA) with
what is behind it. Headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .browser import (
    jupyter_server,
    low_contrast_texts,
    marimo_app,
    open_notebook,
    run_all_cells,
    write_notebook,
)

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SIZE = 32
NAMES = ["tabby cat", "<b>bold</b>", "golden retriever", "owl"]
SETUP = f"""\
import tempfile
import numpy as np
import ig_widget as igw
from tests.browser import sample_image
from tests.models import tiny_cnn

model = tiny_cnn({SIZE}, seed=2)
w = igw.IGWidget(model, sample_image({SIZE}), class_names={NAMES!r}, top_k=4, steps=8)
images = np.random.default_rng(0).integers(0, 256, (12, {SIZE}, {SIZE}, 3)).astype(np.uint8)
result = igw.explain_dataset(model, images, labels=np.arange(12) % 4, steps=2,
                             store=tempfile.mkdtemp() + "/store", progress=False)
g = igw.Gallery(result, model=model, class_names={NAMES!r})
w"""


# The view itself (the Gallery's display controls are wrapped in .igw too, for their styles).
VIEW = ".igw:not(.igg-display)"


def _assert_readable(page, selector: str) -> int:
    checked, failing = low_contrast_texts(page.locator(selector).first)
    assert failing == [], failing
    return checked


def _open_widget_and_gallery(chromium, server):
    """A page at 1400 px with the widget and the Gallery drawn, thumbnails loaded."""
    write_notebook(server.root / "theme.ipynb", [SETUP, "g"])
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    open_notebook(page, server, "theme.ipynb")
    run_all_cells(page)
    page.locator(".igw canvas").nth(2).wait_for(timeout=120_000)
    page.locator(".igg-cell .igg-details:not(:text('loading…'))").first.wait_for(timeout=120_000)
    return page


def test_jupyterlab_light_and_dark(chromium, tmp_path, artifacts):
    with jupyter_server(tmp_path) as server:
        page = _open_widget_and_gallery(chromium, server)
        light = {name: _assert_readable(page, name) for name in (VIEW, ".igg")}
        assert light[VIEW] > 40 and light[".igg"] > 20
        colour = page.locator(VIEW).evaluate("(el) => getComputedStyle(el).color")
        page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
        page.get_by_text("Theme", exact=True).hover()
        page.get_by_text("JupyterLab Dark", exact=True).click()
        page.wait_for_function(
            "(light) => getComputedStyle(document.querySelector('.igw')).color !== light",
            arg=colour,
            timeout=30_000,
        )
        page.wait_for_timeout(500)
        for name in (VIEW, ".igg"):
            assert _assert_readable(page, name) == light[name]
        page.locator(VIEW).screenshot(path=artifacts / "theme-lab-dark.png")
        page.locator(".igg").screenshot(path=artifacts / "theme-lab-dark-gallery.png")
        page.close()


def test_marimo_dark(chromium, tmp_path, artifacts):
    # marimo's "system" theme follows the browser's prefers-color-scheme, emulated dark here.
    config = tmp_path / "config" / "marimo" / "marimo.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[display]\ntheme = "system"\n')
    with marimo_app(tmp_path, NOTEBOOKS / "quickstart_marimo.py") as url:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
        page.goto(url)
        page.locator(".igw canvas").nth(2).wait_for(timeout=180_000)
        page.wait_for_function(
            "() => document.body.classList.contains('dark') || "
            "document.documentElement.classList.contains('dark')",
            timeout=30_000,
        )
        page.wait_for_timeout(1000)
        assert _assert_readable(page, ".igw") > 40
        page.screenshot(path=artifacts / "theme-marimo-dark.png", full_page=True)
        page.close()


# VS Code's Light+ and Dark+ colours (its theme-defaults themes and colour
# registry defaults) as its notebook webview hands them to an output: CSS
# variables on <html>, the theme's kind as the body's class. Colours these
# themes leave unset (widget.border, input.border) are left out, as VS Code does.
VSCODE_FONT = '-apple-system, BlinkMacSystemFont, "Segoe WPC", "Segoe UI", "Ubuntu", sans-serif'
VSCODE_THEMES = {
    "vscode-light": {
        "--vscode-editor-background": "#ffffff",
        "--vscode-editor-foreground": "#000000",
        "--vscode-foreground": "#616161",
        "--vscode-descriptionForeground": "#717171",
        "--vscode-editorWidget-background": "#f3f3f3",
        "--vscode-panel-border": "#80808059",
        "--vscode-input-background": "#ffffff",
        "--vscode-focusBorder": "#0090f1",
        "--vscode-errorForeground": "#a1260d",
        "--vscode-editorWarning-foreground": "#bf8803",
        "--vscode-charts-orange": "#d18616",
        "--vscode-font-family": VSCODE_FONT,
        "--vscode-font-size": "13px",
    },
    "vscode-dark": {
        "--vscode-editor-background": "#1e1e1e",
        "--vscode-editor-foreground": "#d4d4d4",
        "--vscode-foreground": "#cccccc",
        "--vscode-descriptionForeground": "#ccccccb3",
        "--vscode-editorWidget-background": "#252526",
        "--vscode-panel-border": "#80808059",
        "--vscode-input-background": "#3c3c3c",
        "--vscode-focusBorder": "#007fd4",
        "--vscode-errorForeground": "#f48771",
        "--vscode-editorWarning-foreground": "#cca700",
        "--vscode-charts-orange": "#d18616",
        "--vscode-font-family": VSCODE_FONT,
        "--vscode-font-size": "13px",
    },
}
# Each of the theme's colours and the VS Code variable it is to follow there.
FOLLOWS = {
    "--igw-fg": "--vscode-editor-foreground",
    "--igw-bg": "--vscode-editor-background",
    "--igw-bg-alt": "--vscode-editorWidget-background",
    "--igw-border": "--vscode-panel-border",
    "--igw-input-bg": "--vscode-input-background",
    "--igw-input-border": "--vscode-panel-border",
    "--igw-accent": "--vscode-focusBorder",
    "--igw-fg-muted": "--vscode-descriptionForeground",
    "--igw-error": "--vscode-errorForeground",
    "--igw-warn": "--vscode-editorWarning-foreground",
    "--igw-curve-second": "--vscode-charts-orange",
}
THEME_CSS = Path(__file__).resolve().parents[1] / "js" / "src" / "theme.css"

# Puts the outputs in VS Code's place: no JupyterLab variable that theme.css
# reads reaches them (each set to its guaranteed-invalid value, as where they
# are not defined), VS Code's on <html>, its class on <body>, and the output
# on the editor's background, as in VS Code's notebook webview.
AS_VSCODE = """([kind, variables, jupyterNames]) => {
    let style = document.getElementById('as-vscode');
    if (!style) {
        style = document.createElement('style');
        style.id = 'as-vscode';
        document.head.append(style);
    }
    style.textContent = `.jp-OutputArea-output {
        ${jupyterNames.map((name) => `${name}: initial;`).join(' ')}
        background: var(--vscode-editor-background);
    }`;
    document.body.classList.remove('vscode-light', 'vscode-dark');
    document.body.classList.add(kind);
    for (const [name, value] of Object.entries(variables)) {
        document.documentElement.style.setProperty(name, value);
    }
}"""


def _follows_vscode(page, selector: str, variables: dict[str, str]) -> None:
    """Each theme colour of `selector` is made of its VS Code variable, not a fallback."""
    computed = page.locator(selector).first.evaluate(
        "(el, names) => Object.fromEntries(names.map("
        "(name) => [name, getComputedStyle(el).getPropertyValue(name).trim()]))",
        list(FOLLOWS),
    )
    for name, source in FOLLOWS.items():
        assert variables[source] in computed[name].lower(), (name, computed[name])
        assert "light-dark" not in computed[name], (name, computed[name])


def test_vscode_light_and_dark(chromium, tmp_path, artifacts):
    jupyter_names = sorted(set(re.findall(r"--jp-[\w-]+", THEME_CSS.read_text())))
    assert len(jupyter_names) > 8
    with jupyter_server(tmp_path) as server:
        page = _open_widget_and_gallery(chromium, server)
        for kind, variables in VSCODE_THEMES.items():
            page.set_viewport_size({"width": 1400, "height": 1000})
            page.evaluate(AS_VSCODE, [kind, variables, jupyter_names])
            page.wait_for_timeout(500)
            for name in (VIEW, ".igg"):
                _follows_vscode(page, name, variables)
                assert _assert_readable(page, name) > 20
            # What is drawn in those colours: the view's text, the grid's background.
            foreground, grid = page.evaluate(
                "() => [getComputedStyle(document.querySelector('.igw')).color,"
                " getComputedStyle(document.querySelector('.igg-scroller')).backgroundColor]"
            )
            assert foreground == _rgb(variables["--vscode-editor-foreground"])
            assert grid == _rgb(variables["--vscode-editor-background"])
            # Narrow, the view is taller than the window: a window that holds it.
            for width, height in ((1400, 1000), (700, 2600)):
                page.set_viewport_size({"width": width, "height": height})
                page.wait_for_timeout(300)
                for name in (VIEW, ".igg"):
                    assert _assert_readable(page, name) > 20
                page.locator(VIEW).screenshot(path=artifacts / f"theme-{kind}-{width}.png")
                page.locator(".igg").screenshot(
                    path=artifacts / f"theme-{kind}-{width}-gallery.png"
                )
        page.close()


def _rgb(hex_colour: str) -> str:
    """A 6-digit hex colour as Chromium's computed style writes it."""
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"
