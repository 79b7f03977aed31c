// The widget's view: header (predicted and explained class), display and
// compute controls, the three panels and the path plot. Display options are
// redrawn here from the raw maps, with no kernel round trip; their values
// still sync to the kernel so that its snapshots match what is shown.
// Every text from the model or the user goes in through textContent.

import type { AnyModel } from "@anywidget/types";
import { formatNumber, formatSigned } from "./format";
import { drawPathPlot, type PathData } from "./pathplot";
import { polarityColors, RENDER_DEFAULTS, type RenderOptions, renderMaps } from "./render";

type Color = [number, number, number];

export interface Summary {
  target: number;
  label: string;
  score: number;
  predicted: number;
  predicted_label: string;
  predicted_score: number;
  delta: number;
  steps: number;
  method: string;
  runs: number;
  points_used: number;
  elapsed_s: number;
  display_factor: number;
}

type Binary = DataView | ArrayBuffer | ArrayBufferView;

export interface WidgetState extends RenderOptions {
  [key: string]: unknown;
  steps: number | string;
  baseline: string;
  runs: number;
  method: string;
  target: number;
  baseline_choices: string[];
  method_choices: string[];
  classes: [number, string, number][];
  summary: Summary;
  path: PathData;
  image_size: [number, number];
  display_size: [number, number];
  image_rgb: Binary;
  gradient_positive: Binary;
  gradient_negative: Binary;
  ig_positive: Binary;
  ig_negative: Binary;
  computing: boolean;
  progress: [number, number];
  stale: boolean;
  error: string;
  notice: string;
}

export interface ViewOptions {
  /** False in the standalone export: there is no kernel to compute with. */
  computeEnabled: boolean;
}

const RENDER_KEYS = Object.keys(RENDER_DEFAULTS) as (keyof RenderOptions)[];
const MAP_KEYS = ["gradient_positive", "gradient_negative", "ig_positive", "ig_negative"] as const;
const PANEL_TITLES = ["Input", "Normal gradients", "Integrated gradients"] as const;
const BASELINE_CUSTOM = "custom";

function bytesOf(value: Binary): Uint8Array {
  if (value instanceof ArrayBuffer) {
    return new Uint8Array(value);
  }
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function floatsOf(value: Binary): Float32Array {
  const bytes = bytesOf(value);
  // A Float32Array view needs 4-byte alignment; buffers from the comm may not have it.
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function toHex(color: readonly number[]): string {
  return `#${color.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

function fromHex(hex: string): Color {
  const value = Number.parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

/** Parse the steps box: "auto" or a whole number; anything else goes to the kernel to refuse. */
export function parseSteps(text: string): number | string {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

interface Panel {
  canvas: HTMLCanvasElement;
  context: CanvasRenderingContext2D | null;
  pixels: ImageData | null;
}

/**
 * Build the view of `model` inside `el`; returns the cleanup function that
 * removes every listener it added.
 *
 * @example
 * const dispose = mountView(model, document.body, { computeEnabled: false });
 */
export function mountView(
  model: AnyModel<WidgetState>,
  el: HTMLElement,
  options: ViewOptions,
): () => void {
  const controller = new AbortController();
  const signal = controller.signal;
  const modelHandlers: [string, () => void][] = [];
  const listen = (event: string, handler: () => void): void => {
    model.on(event, handler);
    modelHandlers.push([event, handler]);
  };
  const commit = <K extends keyof WidgetState>(key: K, value: WidgetState[K]): void => {
    model.set(key, value);
    model.save_changes();
  };

  const root = element("div", "igw");
  root.dataset.computeEnabled = String(options.computeEnabled);
  // Keys typed into the controls belong to them, not to JupyterLab's
  // notebook shortcuts (digits would turn the cell into a heading, Enter
  // would enter edit mode).
  root.dataset.lmSuppressShortcuts = "true";

  // -- header ----------------------------------------------------------------
  const header = element("div", "igw-header");
  const predicted = element("span", "igw-predicted");
  const classLabel = element("label", "igw-field igw-class-field");
  const classSelect = element("select", "igw-class");
  classLabel.append(element("span", "igw-field-name", "Explain"), classSelect);
  const delta = element("span", "igw-delta");
  delta.title =
    "Completeness error: |sum of attributions − (score at image − score at baseline)|, " +
    "relative to the score difference. Small is good; raise the steps if it is large.";
  const details = element("span", "igw-details");
  header.append(predicted, classLabel, delta, details);

  // -- display controls -------------------------------------------------------
  const display = element("fieldset", "igw-group igw-display");
  display.append(element("legend", undefined, "Display"));

  const field = (name: string, ...controls: HTMLElement[]): HTMLLabelElement => {
    const label = element("label", "igw-field");
    label.append(element("span", "igw-field-name", name), ...controls);
    return label;
  };
  const select = (choices: string[]): HTMLSelectElement => {
    const node = element("select");
    fillSelect(node, choices);
    return node;
  };
  const fillSelect = (node: HTMLSelectElement, choices: string[]): void => {
    node.replaceChildren(
      ...choices.map((choice) => {
        const option = element("option");
        option.value = choice;
        option.text = choice;
        return option;
      }),
    );
  };
  const range = (min: number, max: number, step: number): HTMLInputElement => {
    const node = element("input");
    node.type = "range";
    node.min = String(min);
    node.max = String(max);
    node.step = String(step);
    return node;
  };
  const checkbox = (): HTMLInputElement => {
    const node = element("input");
    node.type = "checkbox";
    return node;
  };
  const numberBox = (min: number, max: number): HTMLInputElement => {
    const node = element("input");
    node.type = "number";
    node.min = String(min);
    node.max = String(max);
    node.step = "1";
    return node;
  };
  const colorBox = (): HTMLInputElement => {
    const node = element("input");
    node.type = "color";
    return node;
  };

  const polarity = select(["positive", "negative", "both"]);
  const clipAbove = range(0, 100, 0.1);
  const clipAboveValue = element("output", "igw-value");
  const clipBelow = range(0, 100, 0.1);
  const clipBelowValue = element("output", "igw-value");
  const cleanup = checkbox();
  const structure = numberBox(1, 64);
  const outlines = checkbox();
  const componentShare = range(0, 100, 1);
  const componentShareValue = element("output", "igw-value");
  const overlay = checkbox();
  const positiveColor = colorBox();
  const negativeColor = colorBox();
  positiveColor.title = "Colour of positive attributions";
  negativeColor.title = "Colour of negative attributions";
  clipAbove.classList.add("igw-clip-above");
  clipBelow.classList.add("igw-clip-below");
  const colors = element("span", "igw-colors");
  colors.append(positiveColor, negativeColor);
  display.append(
    field("polarity", polarity),
    field("clip above", clipAbove, clipAboveValue),
    field("clip below", clipBelow, clipBelowValue),
    field("cleanup", cleanup, structure),
    field("outlines", outlines, componentShare, componentShareValue),
    field("overlay", overlay),
    field("colours", colors),
  );
  structure.title = "Window size of the cleanup (pixels)";
  componentShare.title = "Outline the largest components covering this % of the area (at most 3)";

  // -- compute controls -------------------------------------------------------
  const compute = element("fieldset", "igw-group igw-compute");
  compute.append(element("legend", undefined, "Compute"));
  const steps = element("input", "igw-steps");
  steps.type = "text";
  steps.inputMode = "numeric";
  steps.size = 4;
  steps.title = 'Intervals of the integration rule, or "auto"';
  const baseline = element("select");
  const runs = numberBox(1, 10000);
  runs.classList.add("igw-runs");
  const method = element("select");
  const computeButton = element("button", "igw-button igw-compute-button", "Compute");
  computeButton.type = "button";
  const cancelButton = element("button", "igw-button igw-cancel", "Cancel");
  cancelButton.type = "button";
  const progress = element("progress", "igw-progress");
  const progressText = element("span", "igw-progress-text");
  const staleNote = element("span", "igw-stale", "options changed");
  compute.append(
    field("steps", steps),
    field("baseline", baseline),
    field("runs", runs),
    field("method", method),
    computeButton,
    cancelButton,
    progress,
    progressText,
    staleNote,
  );
  if (!options.computeEnabled) {
    compute.disabled = true;
    compute.title = "A static export: recomputing needs the notebook and its kernel";
  }

  const controls = element("div", "igw-controls");
  controls.append(display, compute);

  // -- messages, panels, readout -----------------------------------------------
  const errorBox = element("div", "igw-error");
  errorBox.setAttribute("role", "alert");
  const noticeBox = element("div", "igw-notice");
  noticeBox.setAttribute("role", "status");

  const panelRow = element("div", "igw-panels");
  const panels: Panel[] = PANEL_TITLES.map((title, index) => {
    const figure = element("figure", "igw-panel");
    const canvas = element("canvas", `igw-canvas igw-canvas-${index}`);
    canvas.dataset.panel = title;
    figure.append(element("figcaption", undefined, title), canvas);
    panelRow.append(figure);
    return { canvas, context: canvas.getContext("2d"), pixels: null };
  });
  const plotFigure = element("figure", "igw-panel igw-path");
  const plot = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  plot.setAttribute("class", "igw-plot");
  plot.setAttribute("role", "img");
  plot.setAttribute("aria-label", "Target score along the integration path");
  plotFigure.append(element("figcaption", undefined, "Score along the path"), plot);
  panelRow.append(plotFigure);
  const readout = element("div", "igw-readout", "Hover over a panel to read the values.");

  root.append(header, controls, errorBox, noticeBox, panelRow, readout);
  el.replaceChildren(root);

  // -- data and drawing ----------------------------------------------------------
  let width = 0;
  let height = 0;
  let image: Uint8Array = new Uint8Array(0);
  const maps: Record<(typeof MAP_KEYS)[number], Float32Array> = {
    gradient_positive: new Float32Array(0),
    gradient_negative: new Float32Array(0),
    ig_positive: new Float32Array(0),
    ig_negative: new Float32Array(0),
  };
  let localError = "";

  const renderOptions = (): RenderOptions => {
    const current = { ...RENDER_DEFAULTS };
    for (const key of RENDER_KEYS) {
      (current as Record<string, unknown>)[key] = model.get(key);
    }
    return current;
  };

  const pixelsOf = (panel: Panel): ImageData | null => {
    if (panel.context === null) {
      return null;
    }
    if (panel.pixels === null || panel.pixels.width !== width || panel.pixels.height !== height) {
      panel.canvas.width = width;
      panel.canvas.height = height;
      panel.pixels = panel.context.createImageData(width, height);
    }
    return panel.pixels;
  };

  const drawInput = (): void => {
    const panel = panels[0];
    const pixels = pixelsOf(panel);
    if (pixels === null || panel.context === null) {
      return;
    }
    const data = pixels.data;
    for (let i = 0, j = 0; i < width * height; i++, j += 4) {
      data[j] = image[i * 3];
      data[j + 1] = image[i * 3 + 1];
      data[j + 2] = image[i * 3 + 2];
      data[j + 3] = 255;
    }
    panel.context.putImageData(pixels, 0, 0);
  };

  const drawMaps = (): void => {
    const current = renderOptions();
    const pairs: [Panel, Float32Array, Float32Array][] = [
      [panels[1], maps.gradient_positive, maps.gradient_negative],
      [panels[2], maps.ig_positive, maps.ig_negative],
    ];
    try {
      for (const [panel, positive, negative] of pairs) {
        const pixels = pixelsOf(panel);
        if (pixels === null || panel.context === null) {
          continue;
        }
        renderMaps(image, positive, negative, width, height, current, pixels.data);
        panel.context.putImageData(pixels, 0, 0);
      }
      localError = "";
    } catch (error) {
      localError = error instanceof Error ? error.message : String(error);
    }
    showMessages();
  };

  const loadData = (): void => {
    [height, width] = model.get("display_size");
    image = bytesOf(model.get("image_rgb"));
    for (const key of MAP_KEYS) {
      maps[key] = floatsOf(model.get(key));
    }
    for (const panel of panels) {
      panel.canvas.style.aspectRatio = `${width} / ${height}`;
    }
  };

  // Several traits often change in one update; draw once after all of them.
  // The input panel is redrawn too: it costs little next to the renderer
  // and keeps every redraw a complete, consistent picture.
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
      if (signal.aborted) {
        return;
      }
      if (dataChanged) {
        loadData();
        dataChanged = false;
      }
      drawInput();
      drawMaps();
    });
  };

  // -- reflecting the model in the controls --------------------------------------
  const showMessages = (): void => {
    const message = [model.get("error"), localError].filter(Boolean).join("\n");
    errorBox.textContent = message;
    errorBox.hidden = message === "";
    noticeBox.textContent = model.get("notice");
    noticeBox.hidden = model.get("notice") === "";
  };

  const showDisplayOptions = (): void => {
    polarity.value = model.get("polarity");
    clipAbove.value = String(model.get("clip_above_percentile"));
    clipAboveValue.textContent = `${model.get("clip_above_percentile")}`;
    clipBelow.value = String(model.get("clip_below_percentile"));
    clipBelowValue.textContent = `${model.get("clip_below_percentile")}`;
    cleanup.checked = model.get("morphological_cleanup");
    structure.value = String(model.get("structure"));
    structure.disabled = !model.get("morphological_cleanup");
    outlines.checked = model.get("outlines");
    componentShare.value = String(model.get("outlines_component_percentage"));
    componentShareValue.textContent = `${model.get("outlines_component_percentage")}`;
    componentShare.disabled = !model.get("outlines");
    overlay.checked = model.get("overlay");
    const colors = polarityColors(renderOptions());
    positiveColor.value = toHex(colors.positive);
    negativeColor.value = toHex(colors.negative);
  };

  const showComputeOptions = (): void => {
    const baselines = [...model.get("baseline_choices")];
    if (model.get("baseline") === BASELINE_CUSTOM) {
      baselines.push(BASELINE_CUSTOM);
    }
    fillSelect(baseline, baselines);
    fillSelect(method, model.get("method_choices"));
    steps.value = String(model.get("steps"));
    baseline.value = model.get("baseline");
    runs.value = String(model.get("runs"));
    method.value = model.get("method");
  };

  const showClasses = (): void => {
    classSelect.replaceChildren(
      ...model.get("classes").map(([index, name, score]) => {
        const option = element("option");
        option.value = String(index);
        option.text = `${name} (${formatNumber(score)})`;
        return option;
      }),
    );
    classSelect.value = String(model.get("target"));
  };

  const showSummary = (): void => {
    const summary = model.get("summary");
    predicted.replaceChildren(
      element("span", "igw-field-name", "Predicted"),
      element("strong", "igw-predicted-name", summary.predicted_label),
      element("span", "igw-score", formatNumber(summary.predicted_score)),
    );
    delta.textContent = `Δ ${(100 * summary.delta).toFixed(2)}%`;
    delta.classList.toggle("igw-delta-high", summary.delta > 0.05);
    const reduced =
      summary.display_factor > 1 ? ` · shown at 1/${summary.display_factor} resolution` : "";
    details.textContent =
      `${summary.points_used} points · ${summary.method} · ` +
      `${summary.elapsed_s.toFixed(2)} s${reduced}`;
    drawPathPlot(plot, model.get("path"));
  };

  const showStatus = (): void => {
    const computing = model.get("computing");
    const [done, total] = model.get("progress");
    root.dataset.computing = String(computing);
    progress.hidden = !computing;
    progressText.hidden = !computing;
    cancelButton.hidden = !computing;
    computeButton.disabled = computing;
    classSelect.disabled = computing || !options.computeEnabled;
    progress.max = Math.max(total, 1);
    progress.value = done;
    progressText.textContent = total > 0 ? `${done} / ${total}` : "starting…";
    const stale = model.get("stale");
    staleNote.hidden = !stale || computing;
    computeButton.classList.toggle("igw-attention", stale);
  };

  // -- user input ----------------------------------------------------------------
  const on = (node: HTMLElement, event: string, handler: () => void): void => {
    node.addEventListener(event, handler, { signal });
  };
  // Typed values apply on Enter as well as when the box loses focus (the
  // browser's change event comes only with the latter).
  const onEntry = (node: HTMLInputElement, apply: () => void): void => {
    on(node, "change", apply);
    node.addEventListener(
      "keydown",
      (event: KeyboardEvent) => {
        if (event.key === "Enter") {
          apply();
        }
      },
      { signal },
    );
  };
  // Sliders redraw while dragging (model.set fires the change event); the
  // kernel hears about the final value only, on release. The clip sliders
  // keep below < above, which the renderer requires.
  const slide = (
    node: HTMLInputElement,
    key: "clip_above_percentile" | "clip_below_percentile" | "outlines_component_percentage",
    lowest: () => number,
    highest: () => number,
  ): void => {
    on(node, "input", () => {
      const value = Math.min(Math.max(Number(node.value), lowest()), highest());
      const rounded = Math.round(value * 10) / 10;
      node.value = String(rounded);
      model.set(key, rounded);
    });
    on(node, "change", () => model.save_changes());
  };
  const CLIP_GAP = 0.1;
  slide(
    clipAbove,
    "clip_above_percentile",
    () => model.get("clip_below_percentile") + CLIP_GAP,
    () => 100,
  );
  slide(
    clipBelow,
    "clip_below_percentile",
    () => 0,
    () => model.get("clip_above_percentile") - CLIP_GAP,
  );
  slide(
    componentShare,
    "outlines_component_percentage",
    () => 0,
    () => 100,
  );
  on(polarity, "change", () => commit("polarity", polarity.value as RenderOptions["polarity"]));
  on(cleanup, "change", () => commit("morphological_cleanup", cleanup.checked));
  onEntry(structure, () => commit("structure", Number(structure.value)));
  on(outlines, "change", () => commit("outlines", outlines.checked));
  on(overlay, "change", () => commit("overlay", overlay.checked));
  on(positiveColor, "input", () => model.set("positive_color", fromHex(positiveColor.value)));
  on(positiveColor, "change", () => model.save_changes());
  on(negativeColor, "input", () => model.set("negative_color", fromHex(negativeColor.value)));
  on(negativeColor, "change", () => model.save_changes());

  onEntry(steps, () => commit("steps", parseSteps(steps.value)));
  on(baseline, "change", () => commit("baseline", baseline.value));
  onEntry(runs, () => commit("runs", Number(runs.value)));
  on(method, "change", () => commit("method", method.value));
  on(classSelect, "change", () => commit("target", Number(classSelect.value)));
  on(computeButton, "click", () => model.send({ type: "compute" }));
  on(cancelButton, "click", () => model.send({ type: "cancel" }));

  for (const panel of panels) {
    panel.canvas.addEventListener(
      "pointermove",
      (event: PointerEvent) => {
        const box = panel.canvas.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) {
          return;
        }
        const x = Math.min(width - 1, Math.floor(((event.clientX - box.left) / box.width) * width));
        const y = Math.min(
          height - 1,
          Math.floor(((event.clientY - box.top) / box.height) * height),
        );
        showReadout(Math.max(0, x), Math.max(0, y));
      },
      { signal },
    );
  }

  const showReadout = (x: number, y: number): void => {
    const i = y * width + x;
    const factor = model.get("summary").display_factor;
    const [fullHeight, fullWidth] = model.get("image_size");
    const span = (start: number, size: number): string => {
      const first = start * factor;
      const last = Math.min(first + factor, size) - 1;
      return first === last ? String(first) : `${first}–${last}`;
    };
    const gradient = maps.gradient_positive[i] - maps.gradient_negative[i];
    const ig = maps.ig_positive[i] - maps.ig_negative[i];
    const averaged = factor > 1 ? " (block mean)" : "";
    readout.textContent =
      `x ${span(x, fullWidth)}, y ${span(y, fullHeight)} · channel mean${averaged}: ` +
      `gradient ${formatSigned(gradient)} · IG ${formatSigned(ig)}`;
  };

  // -- model events ----------------------------------------------------------------
  for (const key of RENDER_KEYS) {
    listen(`change:${key}`, () => {
      showDisplayOptions();
      schedule(false);
    });
  }
  for (const key of MAP_KEYS) {
    listen(`change:${key}`, () => schedule(true));
  }
  for (const key of ["display_size", "image_rgb"]) {
    listen(`change:${key}`, () => schedule(true));
  }
  for (const key of ["steps", "baseline", "runs", "method", "baseline_choices", "method_choices"]) {
    listen(`change:${key}`, showComputeOptions);
  }
  listen("change:classes", showClasses);
  listen("change:target", showClasses);
  listen("change:summary", showSummary);
  listen("change:path", showSummary);
  for (const key of ["computing", "progress", "stale"]) {
    listen(`change:${key}`, showStatus);
  }
  listen("change:error", showMessages);
  listen("change:notice", showMessages);

  showDisplayOptions();
  showComputeOptions();
  showClasses();
  showSummary();
  showStatus();
  showMessages();
  loadData();
  drawInput();
  drawMaps();

  return () => {
    controller.abort();
    for (const [event, handler] of modelHandlers) {
      model.off(event, handler);
    }
  };
}
