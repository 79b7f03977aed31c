// The browser's copy of ig_widget/render.py's render_maps: channel maps in,
// RGBA pixels out. It must stay pixel-identical to the Python renderer, which
// generates the test vectors in js/tests; the module docstring of render.py
// describes the steps. Pure functions, no DOM.
//
// Speed: a display change (a slider) redraws from the same maps, so what
// depends on a map alone is kept per map (in a WeakMap, checked against the
// map's contents each call): its sorted positive values, and its cleaned-up
// version. The cleanup runs on the map itself rather than on the transformed
// strengths, which gives identical results: grey closing and opening only pick
// values, and the strength transform is non-decreasing, so the two commute.

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

/** Scratch buffers shared by all calls, so a redraw allocates nothing per pixel. */
class Workspace {
  readonly sortKeys: Uint32Array;
  readonly sortScratch: Uint32Array;
  readonly sortCounts: Int32Array;
  readonly cleanScratch: Int32Array;
  readonly strengthA: Float64Array;
  readonly strengthB: Float64Array;
  readonly mask: Uint8Array;
  readonly stack: Int32Array;
  readonly labels: Int32Array;
  // Indexed by provisional label (1..pixels), hence one more entry.
  readonly parent: Int32Array;
  readonly componentSize: Int32Array;

  constructor(readonly capacity: number) {
    this.sortKeys = new Uint32Array(capacity);
    this.sortScratch = new Uint32Array(capacity);
    this.sortCounts = new Int32Array(256);
    this.cleanScratch = new Int32Array(capacity);
    this.strengthA = new Float64Array(capacity);
    this.strengthB = new Float64Array(capacity);
    this.mask = new Uint8Array(capacity);
    this.stack = new Int32Array(capacity);
    this.labels = new Int32Array(capacity);
    this.parent = new Int32Array(capacity + 1);
    this.componentSize = new Int32Array(capacity + 1);
  }
}

let workspace: Workspace | null = null;

function workspaceFor(pixels: number): Workspace {
  if (workspace === null || workspace.capacity < pixels) {
    workspace = new Workspace(pixels);
  }
  return workspace;
}

/** What redraws can reuse from one channel map while its contents stay the same. */
interface MapSummary {
  contents: Uint32Array;
  ascending: Float32Array;
  total: number;
  minimum: number;
  cleanedSize: number;
  cleaned: Float32Array | null;
}

const summaries = new WeakMap<Float32Array, MapSummary>();

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
 * Sorts the first `count` keys ascending, in place: bit patterns of positive
 * float32 values, which order like the values. A radix sort: about twice as
 * fast as TypedArray.prototype.sort on 299 x 299 maps in V8.
 */
function sortPositiveFloatBits(keys: Uint32Array, count: number, ws: Workspace): void {
  const counts = ws.sortCounts;
  let source = keys;
  let target = ws.sortScratch;
  for (let shift = 0; shift < 32; shift += 8) {
    counts.fill(0);
    for (let i = 0; i < count; i++) {
      counts[(source[i] >>> shift) & 255]++;
    }
    if (counts[(source[0] >>> shift) & 255] === count) {
      continue; // every key has this digit: the pass would not move anything
    }
    let offset = 0;
    for (let digit = 0; digit < 256; digit++) {
      const size = counts[digit];
      counts[digit] = offset;
      offset += size;
    }
    for (let i = 0; i < count; i++) {
      const key = source[i];
      target[counts[(key >>> shift) & 255]++] = key;
    }
    const previous = source;
    source = target;
    target = previous;
  }
  if (source !== keys) {
    keys.set(source.subarray(0, count));
  }
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}

/** The map's sorted positive values, their total and its minimum (reused while unchanged). */
function summarise(name: string, values: Float32Array, ws: Workspace): MapSummary {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const known = summaries.get(values);
  if (known !== undefined && sameBits(known.contents, bits)) {
    return known;
  }
  const keys = ws.sortKeys;
  let count = 0;
  let minimum = Number.POSITIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= 0 && v < Number.POSITIVE_INFINITY)) {
      throw new RangeError(
        `${name}: expected finite values >= 0 (a channel mean of max(a, 0)), got ${v} at ${i}`,
      );
    }
    if (v < minimum) minimum = v;
    if (v > 0) keys[count++] = bits[i];
  }
  sortPositiveFloatBits(keys, count, ws);
  const ascending = new Float32Array(count);
  new Uint32Array(ascending.buffer).set(keys.subarray(0, count));
  // Largest first, as NumPy's cumsum over the descending values adds them.
  let total = 0;
  for (let i = count - 1; i >= 0; i--) {
    total += ascending[i];
  }
  const summary: MapSummary = {
    contents: bits.slice(),
    ascending,
    total,
    minimum,
    cleanedSize: 0,
    cleaned: null,
  };
  summaries.set(values, summary);
  return summary;
}

/**
 * Value at which the largest entries reach `percentage` percent of the total;
 * the minimum where none does (or at 100 percent, as the example has it).
 */
function shareThreshold(summary: MapSummary, percentage: number): number {
  const { ascending, total } = summary;
  if (!(percentage < 100)) {
    return summary.minimum;
  }
  let cumulative = 0;
  for (let i = ascending.length - 1; i >= 0; i--) {
    cumulative += ascending[i];
    if ((100 * cumulative) / total >= percentage) {
      return ascending[i];
    }
  }
  return summary.minimum;
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
 * Flat size x size grey dilation or erosion, in place, equal to
 * scipy.ndimage's: even windows start at -(size - 1) / 2 for a dilation and
 * -size / 2 for an erosion (integer division), edges mirrored ("reflect").
 */
function windowExtreme(
  values: Int32Array,
  scratch: Int32Array,
  width: number,
  height: number,
  size: number,
  dilate: boolean,
): void {
  const before = dilate ? (size - 1) >> 1 : size >> 1;
  const after = size - 1 - before;
  const columns = reflectedIndices(width, before, after);
  const rows = reflectedIndices(height, before, after);
  // Two copies of each loop, so the comparison in the hot loop is fixed.
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      let extreme = values[row + columns[x]];
      if (dilate) {
        for (let k = 1; k < size; k++) {
          const v = values[row + columns[x + k]];
          if (v > extreme) extreme = v;
        }
      } else {
        for (let k = 1; k < size; k++) {
          const v = values[row + columns[x + k]];
          if (v < extreme) extreme = v;
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
      if (dilate) {
        for (let x = 0; x < width; x++) {
          const v = scratch[source + x];
          if (v > values[row + x]) values[row + x] = v;
        }
      } else {
        for (let x = 0; x < width; x++) {
          const v = scratch[source + x];
          if (v < values[row + x]) values[row + x] = v;
        }
      }
    }
  }
}

/**
 * The map after grey closing then opening (reused while the map and `size`
 * stay the same). Runs on the float32 bit patterns as integers: for values
 * >= 0 they order like the values, and integer comparisons are faster.
 */
function cleanedMap(
  values: Float32Array,
  summary: MapSummary,
  width: number,
  height: number,
  size: number,
  ws: Workspace,
): Float32Array {
  if (summary.cleaned !== null && summary.cleanedSize === size) {
    return summary.cleaned;
  }
  const keys = new Int32Array(values.length);
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    keys[i] = values[i] > 0 ? bits[i] : 0; // -0 becomes +0, the same strength
  }
  windowExtreme(keys, ws.cleanScratch, width, height, size, true);
  windowExtreme(keys, ws.cleanScratch, width, height, size, false);
  windowExtreme(keys, ws.cleanScratch, width, height, size, false);
  windowExtreme(keys, ws.cleanScratch, width, height, size, true);
  summary.cleaned = new Float32Array(keys.buffer);
  summary.cleanedSize = size;
  return summary.cleaned;
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

/** Merges the components of labels `a` and `b`; the lower root stays the root. */
function union(parent: Int32Array, a: number, b: number): void {
  const rootA = findRoot(parent, a);
  const rootB = findRoot(parent, b);
  if (rootA < rootB) {
    parent[rootB] = rootA;
  } else if (rootB < rootA) {
    parent[rootA] = rootB;
  }
}

/** Sets background pixels that are not 4-connected to the image border (holes) in `mask`. */
function fillHoles(mask: Uint8Array, width: number, height: number, ws: Workspace): void {
  const pixels = width * height;
  const stack = ws.stack;
  // Outside background is marked 2 while flooding, then cleared.
  let top = 0;
  const seed = (i: number): void => {
    if (mask[i] === 0) {
      mask[i] = 2;
      stack[top++] = i;
    }
  };
  for (let x = 0; x < width; x++) {
    seed(x);
    seed(pixels - width + x);
  }
  for (let y = 1; y < height - 1; y++) {
    seed(y * width);
    seed(y * width + width - 1);
  }
  while (top > 0) {
    const i = stack[--top];
    const x = i % width;
    if (x > 0 && mask[i - 1] === 0) {
      mask[i - 1] = 2;
      stack[top++] = i - 1;
    }
    if (x < width - 1 && mask[i + 1] === 0) {
      mask[i + 1] = 2;
      stack[top++] = i + 1;
    }
    if (i >= width && mask[i - width] === 0) {
      mask[i - width] = 2;
      stack[top++] = i - width;
    }
    if (i < pixels - width && mask[i + width] === 0) {
      mask[i + width] = 2;
      stack[top++] = i + width;
    }
  }
  for (let i = 0; i < pixels; i++) {
    mask[i] = mask[i] === 2 ? 0 : 1;
  }
}

/**
 * Replaces `strength` by the one-pixel border (0 or 1) of the largest filled
 * 8-connected components covering `componentPercentage` of their area, at most 3.
 */
function outline(
  strength: Float64Array,
  width: number,
  height: number,
  componentPercentage: number,
  ws: Workspace,
): void {
  const pixels = width * height;
  const { mask, labels, parent, componentSize } = ws;
  for (let i = 0; i < pixels; i++) {
    mask[i] = strength[i] > BINARIZE_THRESHOLD ? 1 : 0;
  }
  fillHoles(mask, width, height, ws);
  // Provisional labels in raster order, merged to the lowest: a component's
  // root is the label of its first pixel, so roots in increasing order are
  // scipy.ndimage.label's numbering. Of the four neighbours already seen,
  // those adjacent to each other were merged before, which leaves at most one
  // merge per pixel: the pixel above touches all the others; without it, the
  // upper-left and left pixels touch each other but not the upper-right one.
  let provisional = 0;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      if (mask[i] === 0) {
        labels[i] = 0;
        continue;
      }
      const up = y > 0 ? labels[i - width] : 0;
      const upLeft = y > 0 && x > 0 ? labels[i - width - 1] : 0;
      const upRight = y > 0 && x < width - 1 ? labels[i - width + 1] : 0;
      const left = x > 0 ? labels[i - 1] : 0;
      let label: number;
      if (up !== 0) {
        label = up;
      } else if (upRight !== 0) {
        label = upRight;
        if (left !== 0) union(parent, upRight, left);
        else if (upLeft !== 0) union(parent, upRight, upLeft);
      } else if (upLeft !== 0) {
        label = upLeft;
      } else if (left !== 0) {
        label = left;
      } else {
        provisional++;
        parent[provisional] = provisional;
        componentSize[provisional] = 0;
        label = provisional;
      }
      labels[i] = label;
      componentSize[label]++;
    }
  }
  // Afterwards parent[label] is the root of every label.
  for (let label = provisional; label >= 1; label--) {
    const root = findRoot(parent, label);
    if (root !== label) {
      componentSize[root] += componentSize[label];
    }
  }
  // The three largest roots; ties go to the lower root, as a stable sort's would.
  const largest: number[] = [];
  let area = 0;
  for (let label = 1; label <= provisional; label++) {
    if (parent[label] !== label) continue;
    area += componentSize[label];
    let place = largest.length;
    while (place > 0 && componentSize[label] > componentSize[largest[place - 1]]) {
      place--;
    }
    if (place < MAX_OUTLINED_COMPONENTS) {
      largest.splice(place, 0, label);
      largest.length = Math.min(largest.length, MAX_OUTLINED_COMPONENTS);
    }
  }
  const cutoff = (componentPercentage * area) / 100;
  let kept = 0;
  let covered = 0;
  while (kept < largest.length && (kept === 0 || covered < cutoff)) {
    covered += componentSize[largest[kept]];
    kept++;
  }
  // Reuse componentSize as "kept" flags per provisional label.
  for (let label = 1; label <= provisional; label++) {
    const rank = largest.indexOf(parent[label]);
    componentSize[label] = rank >= 0 && rank < kept ? 1 : 0;
  }
  for (let i = 0; i < pixels; i++) {
    mask[i] = labels[i] === 0 ? 0 : componentSize[labels[i]];
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const interior =
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
  name: string,
  values: Float32Array,
  strength: Float64Array,
  width: number,
  height: number,
  options: RenderOptions,
  ws: Workspace,
): void {
  const summary = summarise(name, values, ws);
  const high = shareThreshold(summary, 100 - options.clip_above_percentile);
  const low = shareThreshold(summary, 100 - options.clip_below_percentile);
  const source = options.morphological_cleanup
    ? cleanedMap(values, summary, width, height, options.structure, ws)
    : values;
  const span = high - low;
  const pixels = width * height;
  if (span > 0) {
    for (let i = 0; i < pixels; i++) {
      const t = (source[i] - low) / span;
      strength[i] = t < 0 ? 0 : Math.min(t, 1);
    }
  } else {
    for (let i = 0; i < pixels; i++) {
      strength[i] = source[i] > high ? 1 : 0;
    }
  }
  if (options.outlines) {
    outline(strength, width, height, options.outlines_component_percentage, ws);
  }
}

/** Clip to 0..255, then truncate as NumPy's cast to uint8 does (a clamped array alone rounds). */
function toByte(value: number): number {
  return value >= 255 ? 255 : value > 0 ? value | 0 : 0;
}

const NO_COLOR: readonly [number, number, number] = [0, 0, 0];

/**
 * Draw the positive and negative channel maps on the image, as
 * ig_widget.render.render_maps does.
 *
 * @param image RGB bytes, width * height * 3.
 * @param positive Channel mean of max(a, 0), width * height, values >= 0.
 * @param negative Channel mean of max(-a, 0), width * height, values >= 0.
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
    computeStrength("positive", positive, layerA, width, height, options, ws);
    colorA = options.positive_color;
  }
  if (drawsNegative) {
    const layer = drawsPositive ? layerB : layerA;
    computeStrength("negative", negative, layer, width, height, options, ws);
    if (drawsPositive) {
      colorB = options.negative_color;
    } else {
      colorA = options.negative_color;
    }
  }
  if (!(drawsPositive && drawsNegative)) {
    layerB.fill(0, 0, pixels);
  }
  const [redA, greenA, blueA] = colorA;
  const [redB, greenB, blueB] = colorB;
  const overlay = options.overlay;
  for (let i = 0, rgb = 0, rgba = 0; i < pixels; i++, rgb += 3, rgba += 4) {
    const a = layerA[i];
    const b = layerB[i];
    if (a === 0 && b === 0) {
      // Nothing drawn here: the formula below gives the image, or black.
      target[rgba] = overlay ? image[rgb] : 0;
      target[rgba + 1] = overlay ? image[rgb + 1] : 0;
      target[rgba + 2] = overlay ? image[rgb + 2] : 0;
      target[rgba + 3] = 255;
      continue;
    }
    let red = a * redA + b * redB;
    let green = a * greenA + b * greenB;
    let blue = a * blueA + b * blueB;
    if (overlay) {
      red = red * OVERLAY_WEIGHT + image[rgb];
      green = green * OVERLAY_WEIGHT + image[rgb + 1];
      blue = blue * OVERLAY_WEIGHT + image[rgb + 2];
    }
    target[rgba] = toByte(red);
    target[rgba + 1] = toByte(green);
    target[rgba + 2] = toByte(blue);
    target[rgba + 3] = 255;
  }
  return target;
}
