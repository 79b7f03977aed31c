// The browser's copy of ig_widget/render.py's render_maps: channel maps in,
// RGBA pixels out. It must stay pixel-identical to the Python renderer, which
// generates the test vectors in js/tests; the module docstring of render.py
// describes the steps. Pure functions, no DOM.

export type Polarity = "positive" | "negative" | "both";

export interface RenderOptions {
  polarity: Polarity;
  clip_above_percentile: number;
  clip_below_percentile: number;
  morphological_cleanup: boolean;
  structure: number;
  outlines: boolean;
  outlines_component_percentage: number;
  overlay: boolean;
  positive_color: [number, number, number];
  negative_color: [number, number, number];
}

/** The Python defaults (ig_widget.render.RENDER_DEFAULTS). Copy before changing. */
export const RENDER_DEFAULTS: RenderOptions = {
  polarity: "positive",
  clip_above_percentile: 99.9,
  clip_below_percentile: 0,
  morphological_cleanup: false,
  structure: 3,
  outlines: false,
  outlines_component_percentage: 90,
  overlay: true,
  positive_color: [0, 255, 0],
  negative_color: [255, 0, 0],
};

export const MAX_STRUCTURE = 64;
const BINARIZE_THRESHOLD = 0.001;
const MAX_OUTLINED_COMPONENTS = 3;
const OVERLAY_WEIGHT = 0.8;

/** Scratch buffers reused across calls, so a redraw allocates nothing per pixel. */
class Workspace {
  readonly sorted: Float32Array;
  readonly strengthA: Float64Array;
  readonly strengthB: Float64Array;
  readonly scratch: Float64Array;
  readonly mask: Uint8Array;
  readonly reached: Uint8Array;
  readonly labels: Int32Array;
  readonly parent: Int32Array;
  readonly stack: Int32Array;

  constructor(readonly capacity: number) {
    this.sorted = new Float32Array(capacity);
    this.strengthA = new Float64Array(capacity);
    this.strengthB = new Float64Array(capacity);
    this.scratch = new Float64Array(capacity);
    this.mask = new Uint8Array(capacity);
    this.reached = new Uint8Array(capacity);
    this.labels = new Int32Array(capacity);
    // Provisional labels never outnumber pixels; index 0 means background.
    this.parent = new Int32Array(capacity + 1);
    // Also numbers the provisional labels 1..capacity, hence the extra entry.
    this.stack = new Int32Array(capacity + 1);
  }
}

let workspace: Workspace | null = null;

function workspaceFor(pixels: number): Workspace {
  if (workspace === null || workspace.capacity < pixels) {
    workspace = new Workspace(pixels);
  }
  return workspace;
}

function checkPercentage(name: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0 && value <= 100)) {
    throw new RangeError(`${name}: expected a number in [0, 100], got ${value}`);
  }
}

function checkColor(name: string, color: readonly number[]): void {
  if (color.length !== 3 || !color.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
    throw new RangeError(`${name}: expected 3 integers in 0..255, got [${color.join(", ")}]`);
  }
}

function checkOptions(options: RenderOptions): void {
  if (!["positive", "negative", "both"].includes(options.polarity)) {
    throw new RangeError(
      `polarity: expected "positive", "negative" or "both", got ${String(options.polarity)}`,
    );
  }
  checkPercentage("clip_above_percentile", options.clip_above_percentile);
  checkPercentage("clip_below_percentile", options.clip_below_percentile);
  if (options.clip_below_percentile >= options.clip_above_percentile) {
    throw new RangeError(
      `clip_below_percentile: expected a value below clip_above_percentile ` +
        `(${options.clip_above_percentile}), got ${options.clip_below_percentile}`,
    );
  }
  checkPercentage("outlines_component_percentage", options.outlines_component_percentage);
  const structure = options.structure;
  if (!(Number.isInteger(structure) && structure >= 1 && structure <= MAX_STRUCTURE)) {
    throw new RangeError(`structure: expected an integer in 1..${MAX_STRUCTURE}, got ${structure}`);
  }
  checkColor("positive_color", options.positive_color);
  checkColor("negative_color", options.negative_color);
}

/**
 * Value at which the largest entries reach `percentage` percent of the total.
 * `descending` is read from the end (it is sorted ascending); `total` is its
 * sum in the same order, so the arithmetic matches NumPy's cumsum in float64.
 */
function shareThreshold(
  ascending: Float32Array,
  total: number,
  percentage: number,
  minimum: number,
): number {
  if (!(percentage < 100)) {
    return minimum;
  }
  let cumulative = 0;
  for (let i = ascending.length - 1; i >= 0; i--) {
    cumulative += ascending[i];
    if ((100 * cumulative) / total >= percentage) {
      return ascending[i];
    }
  }
  return minimum;
}

/** Source index of each position -before .. length + after - 1 under scipy's "reflect" mode. */
function reflectedIndices(length: number, before: number, after: number): Int32Array {
  const table = new Int32Array(length + before + after);
  for (let p = 0; p < table.length; p++) {
    let j = (p - before) % (2 * length);
    if (j < 0) {
      j += 2 * length;
    }
    table[p] = j >= length ? 2 * length - 1 - j : j;
  }
  return table;
}

/**
 * Flat size x size grey dilation or erosion of `values`, in place, equal to
 * scipy.ndimage's: even windows start at -(size - 1) / 2 for a dilation and
 * -size / 2 for an erosion (integer division).
 */
function windowExtreme(
  values: Float64Array,
  scratch: Float64Array,
  width: number,
  height: number,
  size: number,
  dilate: boolean,
): void {
  const before = dilate ? (size - 1) >> 1 : size >> 1;
  const after = size - 1 - before;
  const columns = reflectedIndices(width, before, after);
  const rows = reflectedIndices(height, before, after);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      let extreme = values[row + columns[x]];
      for (let k = 1; k < size; k++) {
        const v = values[row + columns[x + k]];
        if (dilate ? v > extreme : v < extreme) {
          extreme = v;
        }
      }
      scratch[row + x] = extreme;
    }
  }
  for (let y = 0; y < height; y++) {
    const row = y * width;
    values.set(scratch.subarray(rows[y] * width, rows[y] * width + width), row);
    for (let k = 1; k < size; k++) {
      const source = rows[y + k] * width;
      for (let x = 0; x < width; x++) {
        const v = scratch[source + x];
        if (dilate ? v > values[row + x] : v < values[row + x]) {
          values[row + x] = v;
        }
      }
    }
  }
}

/** Background pixels not 4-connected to the image border become foreground (in `mask`). */
function fillHoles(mask: Uint8Array, width: number, height: number, ws: Workspace): void {
  const pixels = width * height;
  const reached = ws.reached;
  const stack = ws.stack;
  reached.fill(0, 0, pixels);
  let top = 0;
  const visit = (i: number): void => {
    if (mask[i] === 0 && reached[i] === 0) {
      reached[i] = 1;
      stack[top++] = i;
    }
  };
  for (let x = 0; x < width; x++) {
    visit(x);
    visit((height - 1) * width + x);
  }
  for (let y = 0; y < height; y++) {
    visit(y * width);
    visit(y * width + width - 1);
  }
  while (top > 0) {
    const i = stack[--top];
    const x = i % width;
    if (x > 0) visit(i - 1);
    if (x < width - 1) visit(i + 1);
    if (i >= width) visit(i - width);
    if (i < pixels - width) visit(i + width);
  }
  for (let i = 0; i < pixels; i++) {
    mask[i] = mask[i] | (reached[i] ^ 1);
  }
}

function findRoot(parent: Int32Array, label: number): number {
  let root = label;
  while (parent[root] !== root) {
    root = parent[root];
  }
  while (parent[label] !== root) {
    const next = parent[label];
    parent[label] = root;
    label = next;
  }
  return root;
}

/** Root of `neighbour`'s component, merged with `label`'s (0: none yet). */
function joinLabel(parent: Int32Array, label: number, neighbour: number): number {
  if (neighbour === 0) {
    return label;
  }
  const root = findRoot(parent, neighbour);
  if (label === 0 || root === label) {
    return root;
  }
  const low = Math.min(root, label);
  parent[Math.max(root, label)] = low;
  return low;
}

/**
 * Labels 8-connected components of `mask` into ws.labels, numbered 1.. in
 * order of first appearance in raster order (as scipy.ndimage.label does).
 * Returns the component count; `sizes` receives each component's pixel count.
 */
function labelComponents(
  mask: Uint8Array,
  width: number,
  height: number,
  ws: Workspace,
): { count: number; sizes: Int32Array } {
  const labels = ws.labels;
  const parent = ws.parent;
  let provisional = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (mask[i] === 0) {
        labels[i] = 0;
        continue;
      }
      let label = 0;
      if (x > 0) label = joinLabel(parent, label, labels[i - 1]);
      if (y > 0) {
        if (x > 0) label = joinLabel(parent, label, labels[i - width - 1]);
        label = joinLabel(parent, label, labels[i - width]);
        if (x < width - 1) label = joinLabel(parent, label, labels[i - width + 1]);
      }
      if (label === 0) {
        provisional++;
        parent[provisional] = provisional;
        label = provisional;
      }
      labels[i] = label;
    }
  }
  // Final numbers in order of first appearance; ws.stack maps root -> number.
  const numbering = ws.stack;
  numbering.fill(0, 0, provisional + 1);
  let count = 0;
  const pixels = width * height;
  for (let i = 0; i < pixels; i++) {
    if (labels[i] !== 0) {
      const root = findRoot(parent, labels[i]);
      if (numbering[root] === 0) {
        numbering[root] = ++count;
      }
      labels[i] = numbering[root];
    }
  }
  const sizes = new Int32Array(count + 1);
  for (let i = 0; i < pixels; i++) {
    sizes[labels[i]]++;
  }
  return { count, sizes };
}

/** Replaces `strength` by the one-pixel border of the largest filled components (0 or 1). */
function outline(
  strength: Float64Array,
  width: number,
  height: number,
  componentPercentage: number,
  ws: Workspace,
): void {
  const pixels = width * height;
  const mask = ws.mask;
  for (let i = 0; i < pixels; i++) {
    mask[i] = strength[i] > BINARIZE_THRESHOLD ? 1 : 0;
  }
  fillHoles(mask, width, height, ws);
  const { count, sizes } = labelComponents(mask, width, height, ws);
  // The largest components, ties to the lower number, as a stable sort would.
  const largest: number[] = [];
  for (let label = 1; label <= count; label++) {
    let place = largest.length;
    while (place > 0 && sizes[label] > sizes[largest[place - 1]]) {
      place--;
    }
    if (place < MAX_OUTLINED_COMPONENTS) {
      largest.splice(place, 0, label);
      largest.length = Math.min(largest.length, MAX_OUTLINED_COMPONENTS);
    }
  }
  let area = 0;
  for (let label = 1; label <= count; label++) {
    area += sizes[label];
  }
  const cutoff = (componentPercentage * area) / 100;
  let kept = 0;
  let covered = 0;
  while (kept < largest.length && (kept === 0 || covered < cutoff)) {
    covered += sizes[largest[kept]];
    kept++;
  }
  const labels = ws.labels;
  for (let i = 0; i < pixels; i++) {
    const label = labels[i];
    mask[i] =
      label !== 0 &&
      (label === largest[0] ||
        (kept > 1 && label === largest[1]) ||
        (kept > 2 && label === largest[2]))
        ? 1
        : 0;
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const interior =
        mask[i] === 1 &&
        x > 0 &&
        x < width - 1 &&
        y > 0 &&
        y < height - 1 &&
        mask[i - 1] === 1 &&
        mask[i + 1] === 1 &&
        mask[i - width] === 1 &&
        mask[i + width] === 1;
      strength[i] = mask[i] === 1 && !interior ? 1 : 0;
    }
  }
}

/** Colour strength in [0, 1] of one sign's map, written into `strength`. */
function computeStrength(
  values: Float32Array,
  strength: Float64Array,
  width: number,
  height: number,
  options: RenderOptions,
  ws: Workspace,
): void {
  const pixels = width * height;
  let positives = 0;
  let minimum = Number.POSITIVE_INFINITY;
  for (let i = 0; i < pixels; i++) {
    const v = values[i];
    if (v < minimum) minimum = v;
    if (v > 0) ws.sorted[positives++] = v;
  }
  const ascending = ws.sorted.subarray(0, positives);
  ascending.sort();
  let total = 0;
  for (let i = positives - 1; i >= 0; i--) {
    total += ascending[i];
  }
  const high = shareThreshold(ascending, total, 100 - options.clip_above_percentile, minimum);
  const low = shareThreshold(ascending, total, 100 - options.clip_below_percentile, minimum);
  const span = high - low;
  for (let i = 0; i < pixels; i++) {
    if (span > 0) {
      const t = (values[i] - low) / span;
      strength[i] = t < 0 ? 0 : Math.min(t, 1);
    } else {
      strength[i] = values[i] > high ? 1 : 0;
    }
  }
  if (options.morphological_cleanup) {
    const size = options.structure;
    windowExtreme(strength, ws.scratch, width, height, size, true);
    windowExtreme(strength, ws.scratch, width, height, size, false);
    windowExtreme(strength, ws.scratch, width, height, size, false);
    windowExtreme(strength, ws.scratch, width, height, size, true);
  }
  if (options.outlines) {
    outline(strength, width, height, options.outlines_component_percentage, ws);
  }
}

const NO_COLOR: readonly [number, number, number] = [0, 0, 0];

/**
 * Draw the positive and negative channel maps on the image, as
 * ig_widget.render.render_maps does.
 *
 * @param image RGB bytes, width * height * 3.
 * @param positive Channel mean of max(a, 0), width * height.
 * @param negative Channel mean of max(-a, 0), width * height.
 * @param out Optional RGBA buffer (width * height * 4) to reuse.
 * @returns RGBA pixels with alpha 255, ready for ImageData.
 * @example
 * const rgba = renderMaps(image, pos, neg, 299, 299, { ...RENDER_DEFAULTS, outlines: true });
 */
export function renderMaps(
  image: Uint8Array,
  positive: Float32Array,
  negative: Float32Array,
  width: number,
  height: number,
  options: RenderOptions,
  out?: Uint8ClampedArray,
): Uint8ClampedArray {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) {
    throw new RangeError(`width, height: expected positive integers, got ${width} x ${height}`);
  }
  const pixels = width * height;
  if (image.length !== pixels * 3) {
    throw new RangeError(`image: expected ${pixels * 3} RGB bytes, got ${image.length}`);
  }
  if (positive.length !== pixels || negative.length !== pixels) {
    throw new RangeError(
      `positive, negative: expected ${pixels} values each, got ${positive.length} and ${negative.length}`,
    );
  }
  const target = out ?? new Uint8ClampedArray(pixels * 4);
  if (target.length !== pixels * 4) {
    throw new RangeError(`out: expected ${pixels * 4} RGBA bytes, got ${target.length}`);
  }
  checkOptions(options);
  const ws = workspaceFor(pixels);
  // Layer A is drawn first and layer B added to it; with one polarity, B is
  // all zeros with no colour, and x + 0 leaves the sum exact.
  const drawsPositive = options.polarity !== "negative";
  const drawsNegative = options.polarity !== "positive";
  const layerA = ws.strengthA;
  const layerB = ws.strengthB;
  let colorA: readonly number[] = NO_COLOR;
  let colorB: readonly number[] = NO_COLOR;
  if (drawsPositive) {
    computeStrength(positive, layerA, width, height, options, ws);
    colorA = options.positive_color;
  }
  if (drawsNegative) {
    computeStrength(negative, drawsPositive ? layerB : layerA, width, height, options, ws);
    if (drawsPositive) {
      colorB = options.negative_color;
    } else {
      colorA = options.negative_color;
    }
  }
  if (!(drawsPositive && drawsNegative)) {
    layerB.fill(0, 0, pixels);
  }
  const overlay = options.overlay;
  for (let i = 0; i < pixels; i++) {
    const a = layerA[i];
    const b = layerB[i];
    for (let c = 0; c < 3; c++) {
      let v = a * colorA[c] + b * colorB[c];
      if (overlay) {
        v = v * OVERLAY_WEIGHT + image[i * 3 + c];
      }
      // Clip, then truncate as NumPy's cast to uint8 does (the clamped
      // array alone would round).
      target[i * 4 + c] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
    }
    target[i * 4 + 3] = 255;
  }
  return target;
}
