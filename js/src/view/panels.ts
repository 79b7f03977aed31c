// The panels: the input, one panel per attribution map (ATTRIBUTION_PANELS),
// and a plot: the score along the path for integrated gradients, or the
// insertion and deletion curves of the methods shown. Attribution panels are
// redrawn here from the raw maps on every display change (renderMaps), with
// their colour key and a text description. Panels wrap onto more rows when
// the output is narrow; any panel can be enlarged to the full width (its
// button, or a click on it). While a computation runs the panels are dimmed
// and say what is coming. When the browser asked for it (the Stability button),
// a spread panel shows how much the method's map varies over several runs.

import { isolate } from "../format";
import {
  type MAP_BUFFERS,
  RANDOM_BASELINES,
  SANITY_STAGE,
  STABILITY_STAGE,
  type StabilityShown,
  type Summary,
} from "../generated";
import { colourKey, groundLuma, outlineRegion, renderMaps } from "../render";
import { bytesOf, floatsOf, SyncedState } from "../state";
import { curveSummary, drawCurvesPlot } from "./curves";
import { button, type Component, element, Scope, uniqueId } from "./dom";
import { describe, Ranked, READOUT_HINT, readout, showKey } from "./key";
import { drawPathPlot } from "./pathplot";

type MapKey = (typeof MAP_BUFFERS)[number];

/** One attribution map shown as a panel: a method's positive and negative channel maps. */
export interface PanelSpec {
  id: string;
  /** Its title, for the shown result. */
  title: (summary: Summary) => string;
  /** Its name in the hover readout. */
  short: (summary: Summary) => string;
  positive: MapKey;
  negative: MapKey;
  /** Whether the shown result has this panel. */
  shown: (summary: Summary) => boolean;
}

const comparing = (summary: Summary): boolean => summary.compare !== "";
const INTEGRATED_GRADIENTS = "integrated_gradients";

/** The attribution panels, in order: the plain gradient, the method, the compared method. */
export const ATTRIBUTION_PANELS: readonly PanelSpec[] = [
  {
    id: "gradient",
    title: () => "Normal gradients",
    short: () => "gradient",
    positive: "gradient_positive",
    negative: "gradient_negative",
    // Compare mode shows the two methods side by side instead; a stored result of
    // another method than integrated gradients has no plain gradient.
    shown: (summary) => !comparing(summary) && summary.gradients,
  },
  {
    id: "explainer",
    title: (summary) => summary.explainer_title,
    short: (summary) =>
      summary.explainer === INTEGRATED_GRADIENTS ? "IG" : summary.explainer_title,
    positive: "explainer_positive",
    negative: "explainer_negative",
    shown: () => true,
  },
  {
    id: "compare",
    title: (summary) => summary.compare_title,
    short: (summary) => summary.compare_title,
    positive: "compare_positive",
    negative: "compare_negative",
    shown: comparing,
  },
];

/** Whether the plot shows the path (integrated gradients alone) or the curves. */
export function showsPath(summary: Summary): boolean {
  return summary.explainer === INTEGRATED_GRADIENTS && !comparing(summary);
}

const ENLARGE = "⤢";
const SHRINK = "⤡";

interface Figure {
  figure: HTMLElement;
  caption: HTMLElement;
  heading: HTMLElement;
  enlarge: HTMLButtonElement;
  description: HTMLElement;
}

export interface Picture extends Figure {
  canvas: HTMLCanvasElement;
  context: CanvasRenderingContext2D | null;
  pixels: ImageData | null;
}

interface AttributionPanel extends Picture {
  spec: PanelSpec;
  key: HTMLElement;
  positive: Float32Array;
  negative: Float32Array;
  ranked: Ranked | null;
}

function makeFigure(scope: Scope, title: string, className: string): Figure {
  const figure = element("figure", `igw-panel ${className}`);
  const caption = element("figcaption", "igw-panel-caption");
  const enlarge = button(ENLARGE, "igw-enlarge");
  enlarge.setAttribute("aria-pressed", "false");
  enlarge.setAttribute("aria-label", `Enlarge ${title}`);
  enlarge.title = "Enlarge to the full width (a click on the picture does too)";
  const heading = element("span", "igw-panel-title", title);
  heading.id = uniqueId("igw-title");
  // The figure is named by its title alone, not by its button too.
  figure.setAttribute("aria-labelledby", heading.id);
  caption.append(heading, enlarge);
  const description = element("p", "igw-description");
  description.id = uniqueId("igw-description");
  figure.append(caption);
  const toggle = (): void => {
    const large = figure.classList.toggle("igw-panel-large");
    enlarge.setAttribute("aria-pressed", String(large));
    enlarge.textContent = large ? SHRINK : ENLARGE;
    enlarge.setAttribute("aria-label", `${large ? "Shrink" : "Enlarge"} ${heading.textContent}`);
  };
  scope.on(enlarge, "click", toggle);
  return { figure, caption, heading, enlarge, description };
}

/** Name a figure (and its picture) `title`; model text, so textContent only. */
function retitle(made: Figure, title: string, picture?: HTMLElement): void {
  if (made.heading.textContent === title) {
    return;
  }
  made.heading.textContent = title;
  const large = made.figure.classList.contains("igw-panel-large");
  made.enlarge.setAttribute("aria-label", `${large ? "Shrink" : "Enlarge"} ${title}`);
  picture?.setAttribute("aria-label", title);
  if (picture !== undefined) {
    picture.dataset.panel = title;
  }
}

export function makePicture(scope: Scope, title: string, className: string): Picture {
  const made = makeFigure(scope, title, className);
  const canvas = element("canvas", "igw-canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", title);
  canvas.setAttribute("aria-describedby", made.description.id);
  canvas.dataset.panel = title;
  made.figure.append(canvas);
  // A click on the picture enlarges it too (the button is the keyboard's way).
  scope.on(canvas, "click", () => made.enlarge.click());
  return { ...made, canvas, context: canvas.getContext("2d"), pixels: null };
}

/**
 * The panels of `state`; `onRenderError` hears the renderer's error after
 * each redraw ("" when it drew).
 */
// What the busy note says depends on these.
const BUSY_KEYS = [
  "computing",
  "progress_stage",
  "target",
  "against",
  "steps",
  "baseline",
  "runs",
  "method",
  "explainer",
  "compare",
  "progress_stage",
];

/** Whether the running computation is a sanity check (the panels stay as they are). */
function checkingSanity(state: SyncedState): boolean {
  return state.get("progress_stage").startsWith(SANITY_STAGE);
}

/** The busy note: what is being computed, and what the panels show meanwhile. */
function busyText(state: SyncedState): string {
  const stage = state.get("progress_stage");
  const shown = isolate(state.get("summary").label);
  if (stage.startsWith(`${STABILITY_STAGE}:`)) {
    return `Computing the spread of the shown map (${stage}); the panels show “${shown}” meanwhile.`;
  }
  if (checkingSanity(state)) {
    return (
      `${state.get("progress_stage")}: its map of “${isolate(state.get("summary").label)}” as ` +
      "the layers of a copy of the model are randomised; the panels stay as they are."
    );
  }
  const steps = state.get("steps");
  const baseline = state.get("baseline");
  const runs = (RANDOM_BASELINES as readonly string[]).includes(baseline)
    ? ` × ${state.get("runs")}`
    : "";
  const stepsText = steps === "auto" ? "auto steps" : `${steps} steps`;
  const compare = state.get("compare");
  const methods =
    state.methodTitle(state.get("explainer")) +
    (compare === "" ? "" : ` and ${state.methodTitle(compare)}`);
  const against = state.get("against");
  const contrast = against === null ? "" : ` − ${isolate(state.classLabel(against))}`;
  return (
    `Computing “${isolate(state.classLabel(state.get("target")))}${contrast}” with ${methods} ` +
    `(${stepsText}, ${baseline} baseline${runs}, ${state.get("method")}); ` +
    `the panels show “${state.explainedLabel()}” until it is done.`
  );
}

/** `picture`'s pixels, its canvas sized `width` × `height` first (null without a context). */
export function picturePixels(picture: Picture, width: number, height: number): ImageData | null {
  if (picture.context === null) {
    return null;
  }
  if (
    picture.pixels === null ||
    picture.pixels.width !== width ||
    picture.pixels.height !== height
  ) {
    picture.canvas.width = width;
    picture.canvas.height = height;
    picture.pixels = picture.context.createImageData(width, height);
  }
  return picture.pixels;
}

/** Draw the RGB bytes `image` into `pixels` and onto `picture`'s canvas. */
function putRgb(picture: Picture, pixels: ImageData, image: Uint8Array): void {
  const data = pixels.data;
  for (let i = 0, j = 0; j < data.length; i++, j += 4) {
    data[j] = image[i * 3];
    data[j + 1] = image[i * 3 + 1];
    data[j + 2] = image[i * 3 + 2];
    data[j + 3] = 255;
  }
  picture.context?.putImageData(pixels, 0, 0);
}

/**
 * The plot panel: the score along the path for integrated gradients alone,
 * the insertion and deletion curves otherwise.
 */
function createPlot(scope: Scope, state: SyncedState): { figure: HTMLElement; draw: () => void } {
  const plotFigure = makeFigure(scope, "Score along the path", "igw-path");
  const plot = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  plot.setAttribute("class", "igw-plot");
  plot.setAttribute("role", "img");
  plot.setAttribute("aria-describedby", plotFigure.description.id);
  plotFigure.figure.append(plot, plotFigure.description);
  const draw = (): void => {
    const summary = state.get("summary");
    const label = state.explainedLabel();
    const curves = state.get("curves");
    // A stored result of another method comes without curves: nothing to plot.
    plotFigure.figure.hidden = !showsPath(summary) && curves.length === 0;
    if (showsPath(summary)) {
      retitle(plotFigure, "Score along the path");
      plot.setAttribute("aria-label", "Target score along the integration path");
      drawPathPlot(plot, state.get("path"), label);
      const path = state.get("path");
      plotFigure.description.textContent =
        `The score of “${label}” goes from ${path.baseline_score.toPrecision(3)} ` +
        `at the baseline to ${path.score.toPrecision(3)} at the image.`;
      return;
    }
    retitle(plotFigure, "Insertion and deletion");
    plot.setAttribute("aria-label", "Insertion and deletion curves");
    drawCurvesPlot(plot, curves, label);
    plotFigure.description.textContent =
      `The score of “${label}” as the most attributed pixels are inserted into a ` +
      `blurred copy (higher is better) or deleted (lower is better). ` +
      curves.map(curveSummary).join("; ") +
      ".";
  };
  return { figure: plotFigure.figure, draw };
}

/** The sentence under the spread panel: what it shows and how stable the map is. */
export function stabilityText(stable: StabilityShown): string {
  const runs = stable.runs.length;
  return (
    `How much the ${stable.title} map varies over ${runs} runs (${stable.runs.join(", ")}): ` +
    `the per-pixel standard deviation of the map summed over channels, drawn stronger where ` +
    `it varies more. Mean rank correlation between the runs ${stable.rank_correlation.toFixed(3)}; ` +
    `${(100 * stable.top_share).toFixed(0)} % of the top ${stable.top_percent} % pixels ` +
    `stay top in every run.`
  );
}

/** An attribution panel for `spec` (the `index`-th), its colour key under the picture. */
function makeAttributionPanel(
  scope: Scope,
  state: SyncedState,
  spec: AttributionPanel["spec"],
  index: number,
): AttributionPanel {
  const picture = makePicture(scope, spec.title(state.get("summary")), `igw-panel-${spec.id}`);
  picture.canvas.classList.add(`igw-canvas-${index + 1}`);
  const key = element("div", "igw-key");
  picture.figure.append(key, picture.description);
  const empty = new Float32Array(0);
  return { ...picture, spec, key, positive: empty, negative: empty, ranked: null };
}

/** The readout for display pixel (`x`, `y`) of a `width` wide picture: every shown map's values. */
function readoutAt(
  state: SyncedState,
  attribution: AttributionPanel[],
  x: number,
  y: number,
  width: number,
): string {
  const factor = state.get("summary").display_factor;
  const [fullHeight, fullWidth] = state.get("image_size");
  const span = (start: number, size: number): string => {
    const first = start * factor;
    const last = Math.min(first + factor, size) - 1;
    return first === last ? String(first) : `${first}–${last}`;
  };
  const summary = state.get("summary");
  const maps = attribution
    .filter((panel) => panel.spec.shown(summary))
    .map((panel) => {
      panel.ranked ??= new Ranked(panel.positive, panel.negative);
      return { name: panel.spec.short(summary), ranked: panel.ranked };
    });
  return readout(span(x, fullWidth), span(y, fullHeight), factor > 1, maps, y * width + x);
}

/** Call `show` with the display pixel under the pointer on `canvas`, `leave` when it goes. */
function followPointer(
  scope: Scope,
  canvas: HTMLCanvasElement,
  size: () => [number, number],
  show: (x: number, y: number) => void,
  leave: () => void,
): void {
  scope.on<PointerEvent>(canvas, "pointermove", (event) => {
    const [width, height] = size();
    const box = canvas.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || width === 0) {
      return;
    }
    const x = Math.floor(((event.clientX - box.left) / box.width) * width);
    const y = Math.floor(((event.clientY - box.top) / box.height) * height);
    show(Math.min(width - 1, Math.max(0, x)), Math.min(height - 1, Math.max(0, y)));
  });
  scope.on(canvas, "pointerleave", leave);
}

export function createPanels(
  state: SyncedState,
  onRenderError: (message: string) => void,
): Component {
  const scope = new Scope();
  const root = element("div", "igw-view-panels");
  const busyNote = element("p", "igw-busy-note");
  // Announced once when a computation starts and once when it ends.
  busyNote.setAttribute("role", "status");
  const grid = element("div", "igw-panels");
  const readoutLine = element("div", "igw-readout", READOUT_HINT);
  root.append(busyNote, grid, readoutLine);

  const input = makePicture(scope, "Input", "igw-panel-input");
  input.canvas.classList.add("igw-canvas-0");
  input.figure.append(input.description);
  const attribution = ATTRIBUTION_PANELS.map((spec, index) =>
    makeAttributionPanel(scope, state, spec, index),
  );
  const spread = makePicture(scope, "Spread", "igw-panel-stability");
  spread.canvas.classList.add("igw-canvas-spread");
  spread.figure.append(spread.description);
  const plot = createPlot(scope, state);
  grid.append(
    input.figure,
    ...attribution.map((panel) => panel.figure),
    spread.figure,
    plot.figure,
  );

  // -- data and drawing ---------------------------------------------------------
  let width = 0;
  let height = 0;
  let image: Uint8Array = new Uint8Array(0);
  // The input panel's picture: the image, with a region target's region outlined.
  let inputImage: Uint8Array = new Uint8Array(0);
  let spreadValues: Float32Array = new Float32Array(0);

  const pixelsOf = (picture: Picture) => picturePixels(picture, width, height);

  const loadData = (): void => {
    [height, width] = state.get("display_size");
    image = bytesOf(state.get("image_rgb"));
    for (const panel of attribution) {
      panel.positive = floatsOf(state.get(panel.spec.positive));
      panel.negative = floatsOf(state.get(panel.spec.negative));
      panel.ranked = null;
    }
    // The Gallery's detail view shares these panels and has no stability traits.
    spreadValues =
      (state.get("stability_shown") ?? null) === null
        ? new Float32Array(0)
        : floatsOf(state.get("stability_spread"));
    for (const picture of [input, ...attribution, spread]) {
      picture.canvas.style.aspectRatio = `${width} / ${height}`;
    }
    const [fullHeight, fullWidth] = state.get("image_size");
    input.description.textContent = `The explained image, ${fullWidth} × ${fullHeight} pixels.`;
    // The Gallery's detail view shares these panels and has no region traits.
    const regionMask =
      state.get("region_mask") === undefined
        ? new Uint8Array(0)
        : bytesOf(state.get("region_mask"));
    inputImage = image;
    if (regionMask.length > 0) {
      const [regionHeight, regionWidth] = state.get("region_size");
      inputImage = image.slice();
      outlineRegion(inputImage, width, height, regionMask, regionWidth, regionHeight);
      input.description.textContent += ` The explained region is outlined in yellow (${state.get("summary").region}).`;
    }
  };

  const drawInput = (): void => {
    const pixels = pixelsOf(input);
    if (pixels !== null) {
      putRgb(input, pixels, inputImage);
    }
  };

  const drawMaps = (): void => {
    const options = state.renderOptions();
    const summary = state.get("summary");
    const label = state.explainedLabel();
    let problem = "";
    for (const panel of attribution) {
      const shown = panel.spec.shown(summary);
      panel.figure.hidden = !shown;
      if (!shown) {
        continue;
      }
      retitle(panel, panel.spec.title(summary), panel.canvas);
      try {
        const pixels = pixelsOf(panel);
        if (pixels !== null && panel.context !== null) {
          renderMaps(image, panel.positive, panel.negative, width, height, options, pixels.data);
          panel.context.putImageData(pixels, 0, 0);
        }
        const entries = colourKey(
          panel.positive,
          panel.negative,
          options,
          groundLuma(image, options.overlay),
          width,
        );
        showKey(panel.key, entries, label);
        panel.description.textContent = describe(panel.spec.title(summary), label, entries);
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
    }
    problem ||= drawSpread(options);
    onRenderError(problem);
  };

  // The spread is drawn as a map of one sign, with the display options.
  const drawSpread = (options: ReturnType<SyncedState["renderOptions"]>): string => {
    const stable = state.get("stability_shown") ?? null;
    spread.figure.hidden = stable === null || spreadValues.length !== width * height;
    if (stable === null || spread.figure.hidden) {
      return "";
    }
    retitle(spread, `Spread over ${stable.runs.length} runs`, spread.canvas);
    spread.description.textContent = stabilityText(stable);
    try {
      const pixels = pixelsOf(spread);
      if (pixels !== null && spread.context !== null) {
        const none = new Float32Array(spreadValues.length);
        const positive = { ...options, polarity: "positive" as const };
        renderMaps(image, spreadValues, none, width, height, positive, pixels.data);
        spread.context.putImageData(pixels, 0, 0);
      }
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
    return "";
  };

  // Several traits often change in one update; draw once after all of them.
  // The input panel changes only with the data.
  let dataChanged = false;
  let scheduled = false;
  const schedule = (reload: boolean): void => {
    dataChanged ||= reload;
    if (scheduled) {
      return;
    }
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      if (scope.disposed) {
        return;
      }
      if (dataChanged) {
        loadData();
        drawInput();
        dataChanged = false;
      }
      drawMaps();
    });
  };

  // -- computing ----------------------------------------------------------------
  const showBusy = (): void => {
    const computing = state.get("computing");
    // A sanity check leaves the panels as they are: they are not dimmed for it.
    const changing = computing && !checkingSanity(state);
    grid.classList.toggle("igw-busy", changing);
    grid.setAttribute("aria-busy", String(changing));
    busyNote.hidden = !computing;
    busyNote.textContent = computing ? busyText(state) : "";
  };

  // -- the readout ----------------------------------------------------------------
  const showReadout = (x: number, y: number): void => {
    readoutLine.textContent = readoutAt(state, attribution, x, y, width);
  };
  for (const picture of [input, ...attribution]) {
    followPointer(
      scope,
      picture.canvas,
      () => [width, height],
      showReadout,
      () => {
        readoutLine.textContent = READOUT_HINT;
      },
    );
  }

  // -- model events ---------------------------------------------------------------
  state.listen(scope, SyncedState.renderKeys, () => schedule(false));
  state.listen(
    scope,
    [
      "display_size",
      "image_rgb",
      "region_mask",
      "region_size",
      ...attribution.flatMap((p) => [p.spec.positive, p.spec.negative]),
      "stability_spread",
      "stability_shown",
    ],
    () => schedule(true),
  );
  state.listen(scope, ["summary"], () => schedule(false));
  state.listen(scope, ["summary", "path", "curves"], plot.draw);
  state.listen(scope, BUSY_KEYS, showBusy);

  loadData();
  drawInput();
  drawMaps();
  plot.draw();
  showBusy();
  return { element: root, dispose: () => scope.dispose() };
}
