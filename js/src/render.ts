// The browser's copy of ig_widget/render.py's render_maps and colour_key:
// channel maps in, RGBA pixels out. It must stay pixel-identical to the Python
// renderer, which generates the test vectors in js/tests; the module docstring
// of render.py describes the steps and the two styles. Pure functions, no DOM.
// The constants and option types come from the Python side (generated.ts).
//
// Speed: a display change (a slider) redraws from the same maps, so what
// depends on a map alone is kept per map (in a WeakMap, checked against the
// map's contents each call): its sorted positive values and their running
// shares of the total, each pixel's share (heatmap style), and its cleaned-up
// version. The cleanup runs on the map itself rather than on the transformed
// strengths, which gives identical results: grey closing and opening only
// pick values, and both styles' strengths are non-decreasing in the value, so
// the two commute.

import {
  BINARIZE_THRESHOLD,
  type Color,
  DARK_GROUND,
  DEEPEN,
  KEY_BACKGROUND,
  KEY_STOPS,
  LIGHTEN,
  LUMA_WEIGHTS,
  MAX_OUTLINED_COMPONENTS,
  MAX_PATCH,
  MAX_STRUCTURE,
  OPAQUE_STRENGTH,
  OVERLAY_WEIGHT,
  POLARITIES,
  type RenderOptions,
  STYLE_COLORS,
  STYLES,
  TOP_PIXELS_PERCENT,
} from "./generated";

export type { Color, Polarity, RenderOptions, Style } from "./generated";
export { MAX_PATCH, MAX_STRUCTURE, RENDER_DEFAULTS } from "./generated";

type Sign = "positive" | "negative";
const SIGNS: readonly Sign[] = ["positive", "negative"];

/** What one sign's colours stand for in a picture (ig_widget.render.KeyEntry). */
export interface KeyEntry {
  polarity: Sign;
  color: Color;
  /** KEY_STOPS RGB colours for strengths 0 .. 1, over the picture's ground (see keyGround). */
  colors: Color[];
  /** Attribution magnitudes at strength 0 and 1 (the clip thresholds). */
  low: number;
  high: number;
  /** Percent of the sign's total held by the pixels at least as strong as low, high. */
  low_share: number;
  high_share: number;
  total: number;
  /** Percent of the total held by the strongest TOP_PIXELS_PERCENT % of the pixels. */
  top_share: number;
}

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
  /** The positive values, ascending. */
  ascending: Float32Array;
  /** Percent of the total reached by the j + 1 largest values, for each j. */
  descendingShare: Float64Array;
  total: number;
  minimum: number;
  /** Per pixel: percent of the total held by the values above it (heatmap style). */
  shares: Float64Array | null;
  cleanedSize: number;
  cleaned: Float32Array | null;
  cleanedShares: Float64Array | null;
  /** The last outline drawn from this map, and what it was drawn from. */
  outlined: Outlined | null;
}

/**
 * An outline depends on the region it outlines and the component share
 * only. Both styles' strengths grow with the value, so the region (strength
 * above BINARIZE_THRESHOLD) is every pixel whose value reaches the smallest
 * value in it: that value, with the cleanup window, names the region. While a
 * clip slider moves, the region mostly stays the same and the outline is
 * reused.
 */
interface Outlined {
  cleanup: number;
  smallest: number;
  percentage: number;
  border: Uint8Array;
}

const summaries = new WeakMap<Float32Array, MapSummary>();

function checkPercentage(name: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0 && value <= 100)) {
    throw new RangeError(`${name}: expected a number in [0, 100], got ${value}`);
  }
}

function checkColor(name: string, color: readonly number[] | null): void {
  if (color === null) {
    return;
  }
  if (color.length !== 3 || !color.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
    throw new RangeError(
      `${name}: expected 3 integers in 0..255, or null for the style's colour, got [${color.join(", ")}]`,
    );
  }
}

function checkChoice(name: string, value: string, choices: readonly string[]): void {
  if (!choices.includes(value)) {
    const allowed = choices.map((choice) => `"${choice}"`).join(", ");
    throw new RangeError(`${name}: expected one of ${allowed}, got ${String(value)}`);
  }
}

function checkOptions(options: RenderOptions): void {
  checkChoice("style", options.style, STYLES);
  checkChoice("polarity", options.polarity, POLARITIES);
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
  const patch = options.patch;
  if (!(Number.isInteger(patch) && patch >= 0 && patch <= MAX_PATCH)) {
    throw new RangeError(`patch: expected an integer in 0..${MAX_PATCH}, got ${patch}`);
  }
}

/** The patch view of one pair of maps, kept while the maps and the patch side stay the same. */
interface Patched {
  negative: Float32Array;
  patch: number;
  width: number;
  positiveBits: Uint32Array;
  negativeBits: Uint32Array;
  maps: [Float32Array, Float32Array];
}

const patchedMaps = new WeakMap<Float32Array, Patched>();

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/**
 * The patch view of two channel maps, as ig_widget.render.patch_maps: each
 * patch x patch square of the grid from the top-left corner gets the mean of
 * positive - negative over its pixels (summed in float64 in the same order,
 * offsets within the square row by row), its positive part into the positive
 * map and its negative part into the negative one. Edge squares may be smaller.
 */
export function patchMaps(
  positive: Float32Array,
  negative: Float32Array,
  width: number,
  height: number,
  patch: number,
): [Float32Array, Float32Array] {
  const rows = Math.ceil(height / patch);
  const cols = Math.ceil(width / patch);
  const sums = new Float64Array(rows * cols);
  for (let dy = 0; dy < patch; dy++) {
    for (let dx = 0; dx < patch; dx++) {
      for (let row = 0; row < rows; row++) {
        const y = row * patch + dy;
        if (y >= height) continue;
        for (let col = 0; col < cols; col++) {
          const x = col * patch + dx;
          if (x >= width) continue;
          const i = y * width + x;
          sums[row * cols + col] += positive[i] - negative[i];
        }
      }
    }
  }
  const means = new Float32Array(rows * cols);
  for (let row = 0; row < rows; row++) {
    const tall = Math.min(patch, height - row * patch);
    for (let col = 0; col < cols; col++) {
      const wide = Math.min(patch, width - col * patch);
      means[row * cols + col] = sums[row * cols + col] / (tall * wide);
    }
  }
  const up = new Float32Array(width * height);
  const down = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / patch) * cols;
    for (let x = 0; x < width; x++) {
      const mean = means[row + Math.floor(x / patch)];
      up[y * width + x] = Math.max(mean, 0);
      down[y * width + x] = Math.max(-mean, 0);
    }
  }
  return [up, down];
}

/** The maps a picture draws: the channel maps, or their patch view (reused while unchanged). */
function drawnMaps(
  positive: Float32Array,
  negative: Float32Array,
  width: number,
  height: number,
  options: RenderOptions,
): [Float32Array, Float32Array] {
  const patch = options.patch;
  if (patch === 0) return [positive, negative];
  const known = patchedMaps.get(positive);
  if (
    known !== undefined &&
    known.negative === negative &&
    known.patch === patch &&
    known.width === width &&
    sameBits(known.positiveBits, bitsOf(positive)) &&
    sameBits(known.negativeBits, bitsOf(negative))
  ) {
    return known.maps;
  }
  const maps = patchMaps(positive, negative, width, height, patch);
  patchedMaps.set(positive, {
    negative,
    patch,
    width,
    positiveBits: bitsOf(positive).slice(),
    negativeBits: bitsOf(negative).slice(),
    maps,
  });
  return maps;
}

/** The colour each sign is drawn in: the option, or the style's own where it is null. */
export function polarityColors(options: RenderOptions): Record<Sign, Color> {
  const own = STYLE_COLORS[options.style];
  return {
    positive: options.positive_color ?? [...own.positive],
    negative: options.negative_color ?? [...own.negative],
  };
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
  const descendingShare = new Float64Array(count);
  let cumulative = 0;
  for (let i = count - 1, j = 0; i >= 0; i--, j++) {
    cumulative += ascending[i];
    descendingShare[j] = (100 * cumulative) / total;
  }
  const summary: MapSummary = {
    contents: bits.slice(),
    ascending,
    descendingShare,
    total,
    minimum,
    shares: null,
    cleanedSize: 0,
    cleaned: null,
    cleanedShares: null,
    outlined: null,
  };
  summaries.set(values, summary);
  return summary;
}

/**
 * Value at which the largest entries reach `percentage` percent of the total;
 * the minimum where none does (or at 100 percent, as the example has it).
 */
function shareThreshold(summary: MapSummary, percentage: number): number {
  const { ascending, descendingShare } = summary;
  if (!(percentage < 100)) {
    return summary.minimum;
  }
  // The first (largest-first) index whose running share reaches the percentage.
  let low = 0;
  let high = descendingShare.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (descendingShare[middle] < percentage) low = middle + 1;
    else high = middle;
  }
  return low < ascending.length ? ascending[ascending.length - 1 - low] : summary.minimum;
}

/**
 * Percent of the total held by the values above `value` (or equal, if
 * `inclusive`); 100 for values <= 0, which every positive value is above.
 */
function shareAbove(summary: MapSummary, value: number, inclusive: boolean): number {
  if (!(value > 0)) {
    return 100;
  }
  const { ascending, descendingShare } = summary;
  // The first ascending index holding a value counted as above.
  let low = 0;
  let high = ascending.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    const entry = ascending[middle];
    if (inclusive ? entry < value : entry <= value) low = middle + 1;
    else high = middle;
  }
  const above = ascending.length - low;
  return above > 0 ? descendingShare[above - 1] : 0;
}

/** Each pixel's share of the total held by the values above it. */
function pixelShares(summary: MapSummary, values: Float32Array): Float64Array {
  const shares = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    shares[i] = shareAbove(summary, values[i], false);
  }
  return shares;
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
  summary.cleanedShares = null;
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
  let inside = 0;
  while (inside < pixels && mask[inside] === 1) inside++;
  if (inside === pixels) {
    // One region that is the whole image: its border would be the frame.
    strength.fill(0, 0, pixels);
    return;
  }
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
      strength[y * width + x] = onInnerBorder(mask, width, height, x, y) ? 1 : 0;
    }
  }
}

/** Whether pixel (x, y) of the 0/1 `mask` is in it with a 4-neighbour outside it or the image. */
function onInnerBorder(
  mask: Uint8Array,
  width: number,
  height: number,
  x: number,
  y: number,
): boolean {
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
  return mask[i] === 1 && !interior;
}

/** The region outline's colour (render.py's REGION_COLOR). */
export const REGION_COLOR: Color = [255, 221, 0];

/**
 * Outlines the region `mask` (0/1, `maskHeight` x `maskWidth`) on the RGB
 * `image` (`width` x `height`) in place, as render.py's outline_region:
 * pixel (x, y) is inside when mask[y * maskHeight // height, x * maskWidth // width]
 * is, and the region's one-pixel inner border takes REGION_COLOR.
 */
export function outlineRegion(
  image: Uint8Array,
  width: number,
  height: number,
  mask: Uint8Array,
  maskWidth: number,
  maskHeight: number,
): void {
  if (image.length !== width * height * 3 || mask.length !== maskWidth * maskHeight) {
    throw new Error(
      `outlineRegion: expected an image of ${width * height * 3} bytes and a mask of ` +
        `${maskWidth * maskHeight}, got ${image.length} and ${mask.length}`,
    );
  }
  const scaled = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = Math.floor((y * maskHeight) / height) * maskWidth;
    for (let x = 0; x < width; x++) {
      scaled[y * width + x] = mask[row + Math.floor((x * maskWidth) / width)] ? 1 : 0;
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (onInnerBorder(scaled, width, height, x, y)) {
        image.set(REGION_COLOR, (y * width + x) * 3);
      }
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
  const top = 100 - options.clip_above_percentile;
  const bottom = 100 - options.clip_below_percentile;
  const source = options.morphological_cleanup
    ? cleanedMap(values, summary, width, height, options.structure, ws)
    : values;
  const pixels = width * height;
  if (options.style === "heatmap") {
    let shares: Float64Array;
    if (options.morphological_cleanup) {
      summary.cleanedShares ??= pixelShares(summary, source);
      shares = summary.cleanedShares;
    } else {
      summary.shares ??= pixelShares(summary, values);
      shares = summary.shares;
    }
    const span = bottom - top;
    for (let i = 0; i < pixels; i++) {
      const t = (bottom - shares[i]) / span;
      strength[i] = t < 0 ? 0 : Math.min(t, 1);
    }
  } else {
    const high = shareThreshold(summary, top);
    const low = shareThreshold(summary, bottom);
    const span = high - low;
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
  }
  if (options.outlines) {
    outlineOnce(summary, source, strength, width, height, options, ws);
  }
}

/** The outline of the region in `strength`, drawn into it, or the same one reused. */
function outlineOnce(
  summary: MapSummary,
  source: Float32Array,
  strength: Float64Array,
  width: number,
  height: number,
  options: RenderOptions,
  ws: Workspace,
): void {
  const pixels = width * height;
  let smallest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < pixels; i++) {
    if (strength[i] > BINARIZE_THRESHOLD && source[i] < smallest) smallest = source[i];
  }
  const cleanup = options.morphological_cleanup ? options.structure : 0;
  const percentage = options.outlines_component_percentage;
  const known = summary.outlined;
  if (
    known === null ||
    known.cleanup !== cleanup ||
    known.smallest !== smallest ||
    known.percentage !== percentage
  ) {
    outline(strength, width, height, percentage, ws);
    const border = new Uint8Array(pixels);
    for (let i = 0; i < pixels; i++) border[i] = strength[i];
    summary.outlined = { cleanup, smallest, percentage, border };
    return;
  }
  for (let i = 0; i < pixels; i++) strength[i] = known.border[i];
}

/** Clip to 0..255, then truncate as NumPy's cast to uint8 does (a clamped array alone rounds). */
function toByte(value: number): number {
  return value >= 255 ? 255 : value > 0 ? value | 0 : 0;
}

const NO_COLOR: Color = [0, 0, 0];

/**
 * Mean luma of what a heatmap is drawn on: the grey image, or black (0)
 * without overlay. From exact integer sums, as ig_widget.render.ground_luma.
 */
export function groundLuma(image: Uint8Array, overlay: boolean): number {
  if (!overlay) return 0;
  let red = 0;
  let green = 0;
  let blue = 0;
  for (let i = 0; i < image.length; i += 3) {
    red += image[i];
    green += image[i + 1];
    blue += image[i + 2];
  }
  const [lumaRed, lumaGreen, lumaBlue] = LUMA_WEIGHTS;
  return (lumaRed * red + lumaGreen * green + lumaBlue * blue) / (image.length / 3);
}

/** The grey a key is drawn over: black without overlay or in the keras style. */
export function keyGround(ground: number | undefined, options: RenderOptions): number {
  if (options.style === "keras" || !options.overlay) return 0;
  return ground ?? KEY_BACKGROUND;
}

/**
 * Colour two strength layers onto the RGB `image` in the options' style,
 * writing RGBA into `target`: layer A first, then layer B (all zeros with
 * no colour when only one sign is drawn, which leaves the result exact).
 * `dark`: the heatmap's strong end lightens (else it deepens).
 */
function compose(
  image: Uint8Array,
  layerA: Float64Array,
  colorA: readonly number[],
  layerB: Float64Array,
  colorB: readonly number[],
  pixels: number,
  options: RenderOptions,
  target: Uint8ClampedArray,
  dark: boolean,
): void {
  const [redA, greenA, blueA] = colorA;
  const [redB, greenB, blueB] = colorB;
  const overlay = options.overlay;
  if (options.style === "keras") {
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
    return;
  }
  const [lumaRed, lumaGreen, lumaBlue] = LUMA_WEIGHTS;
  const mixed = MIXED;
  for (let i = 0, rgb = 0, rgba = 0; i < pixels; i++, rgb += 3, rgba += 4) {
    const grey = overlay
      ? lumaRed * image[rgb] + lumaGreen * image[rgb + 1] + lumaBlue * image[rgb + 2]
      : 0;
    mixed[0] = grey;
    mixed[1] = grey;
    mixed[2] = grey;
    blend(mixed, layerA[i], redA, greenA, blueA, dark);
    blend(mixed, layerB[i], redB, greenB, blueB, dark);
    // Rounded half up, as the Python renderer's np.floor(x + 0.5).
    target[rgba] = Math.floor(mixed[0] + 0.5);
    target[rgba + 1] = Math.floor(mixed[1] + 0.5);
    target[rgba + 2] = Math.floor(mixed[2] + 0.5);
    target[rgba + 3] = 255;
  }
}

/** One pixel's colour while the layers are blended over it. */
const MIXED = new Float64Array(3);

/** heatmap style: blend a colour over one pixel (`mixed`, RGB floats) by its strength. */
function blend(
  mixed: Float64Array,
  s: number,
  red: number,
  green: number,
  blue: number,
  dark: boolean,
): void {
  // A zero strength blends with opacity 0, which leaves the value exact.
  if (s === 0) return;
  const ramp = Math.min(s / OPAQUE_STRENGTH, 1);
  const opacity = ramp * ramp;
  // On a dark ground, towards white from half strength on; else deeper.
  const raise = dark ? LIGHTEN * Math.max(2 * s - 1, 0) : 0;
  const shade = dark ? 1 - raise : 1 - DEEPEN * s;
  const lift = raise * 255;
  mixed[0] += opacity * (red * shade + lift - mixed[0]);
  mixed[1] += opacity * (green * shade + lift - mixed[1]);
  mixed[2] += opacity * (blue * shade + lift - mixed[2]);
}

function checkSizes(
  image: Uint8Array,
  positive: Float32Array,
  negative: Float32Array,
  width: number,
  height: number,
): number {
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
  return pixels;
}

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
  const pixels = checkSizes(image, positive, negative, width, height);
  const target = out ?? new Uint8ClampedArray(pixels * 4);
  if (target.length !== pixels * 4) {
    throw new RangeError(`out: expected ${pixels * 4} RGBA bytes, got ${target.length}`);
  }
  checkOptions(options);
  const ws = workspaceFor(pixels);
  const [drawnPositive, drawnNegative] = drawnMaps(positive, negative, width, height, options);
  const colors = polarityColors(options);
  const drawsPositive = options.polarity !== "negative";
  const drawsNegative = options.polarity !== "positive";
  const layerA = ws.strengthA;
  const layerB = ws.strengthB;
  let colorA: readonly number[] = NO_COLOR;
  let colorB: readonly number[] = NO_COLOR;
  if (drawsPositive) {
    computeStrength("positive", drawnPositive, layerA, width, height, options, ws);
    colorA = colors.positive;
  }
  if (drawsNegative) {
    const layer = drawsPositive ? layerB : layerA;
    computeStrength("negative", drawnNegative, layer, width, height, options, ws);
    if (drawsPositive) {
      colorB = colors.negative;
    } else {
      colorA = colors.negative;
    }
  }
  if (!(drawsPositive && drawsNegative)) {
    layerB.fill(0, 0, pixels);
  }
  const dark = groundLuma(image, options.overlay) < DARK_GROUND;
  compose(image, layerA, colorA, layerB, colorB, pixels, options, target, dark);
  return target;
}

/** The colours of the key: strengths 0 .. 1 in KEY_STOPS steps, over the ground's grey. */
function keyColors(color: Color, options: RenderOptions, ground: number): Color[] {
  const strengths = Float64Array.from({ length: KEY_STOPS }, (_, i) => i / (KEY_STOPS - 1));
  const grey = new Uint8Array(KEY_STOPS * 3).fill(Math.floor(ground + 0.5));
  const rgba = new Uint8ClampedArray(KEY_STOPS * 4);
  const none = new Float64Array(KEY_STOPS);
  compose(grey, strengths, color, none, NO_COLOR, KEY_STOPS, options, rgba, ground < DARK_GROUND);
  return Array.from(
    { length: KEY_STOPS },
    (_, i): Color => [rgba[i * 4], rgba[i * 4 + 1], rgba[i * 4 + 2]],
  );
}

/** A key entry's colours alone: what a colour means, without any picture's numbers. */
export type LegendEntry = Pick<KeyEntry, "polarity" | "color" | "colors">;

/**
 * The colours of the options' pictures, one entry per drawn sign, over the
 * ground colourKey would use: the key of pictures that are each scaled on
 * their own (the Gallery's), so that share no numbers.
 */
export function keyLegend(options: RenderOptions, ground?: number): LegendEntry[] {
  checkOptions(options);
  const grey = keyGround(ground, options);
  const colors = polarityColors(options);
  return SIGNS.filter((sign) => options.polarity === sign || options.polarity === "both").map(
    (sign) => ({
      polarity: sign,
      color: colors[sign],
      colors: keyColors(colors[sign], options, grey),
    }),
  );
}

/**
 * What the colours of a picture stand for, one entry per drawn sign, as
 * ig_widget.render.colour_key computes it. `ground` is the picture's
 * groundLuma (KEY_BACKGROUND when not given); `width`, the maps' width, is
 * needed for the patch view (options.patch > 0).
 *
 * @example
 * const [entry] = colourKey(pos, neg, { ...RENDER_DEFAULTS }, groundLuma(image, true));
 * entry.high; // the value drawn at full strength
 */
export function colourKey(
  positive: Float32Array,
  negative: Float32Array,
  options: RenderOptions,
  ground?: number,
  width?: number,
): KeyEntry[] {
  const legend = keyLegend(options, ground);
  if (positive.length !== negative.length) {
    throw new RangeError(
      `positive, negative: expected the same size, got ${positive.length} and ${negative.length}`,
    );
  }
  if (options.patch > 0) {
    if (
      width === undefined ||
      !(Number.isInteger(width) && width > 0 && positive.length % width === 0)
    ) {
      throw new RangeError(
        `width: expected the maps' width (a divisor of ${positive.length}) for patch ${options.patch}, got ${width}`,
      );
    }
    [positive, negative] = drawnMaps(positive, negative, width, positive.length / width, options);
  }
  const ws = workspaceFor(positive.length);
  const topCount = Math.floor((positive.length * TOP_PIXELS_PERCENT + 99) / 100);
  return legend.map((colours): KeyEntry => {
    const summary = summarise(
      colours.polarity,
      colours.polarity === "positive" ? positive : negative,
      ws,
    );
    const high = shareThreshold(summary, 100 - options.clip_above_percentile);
    const low = shareThreshold(summary, 100 - options.clip_below_percentile);
    const count = summary.ascending.length;
    return {
      ...colours,
      low,
      high,
      low_share: shareAbove(summary, low, true),
      high_share: shareAbove(summary, high, true),
      total: summary.total,
      top_share: summary.total ? summary.descendingShare[Math.min(topCount, count) - 1] : 0,
    };
  });
}
