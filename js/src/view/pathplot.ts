// The saturation plot: the target score at each point of the straight path
// from the baseline (alpha = 0) to the image (alpha = 1), with labelled axes
// and round tick values. Drawn as SVG so it follows the theme's colours
// through CSS; its labels are text nodes.

import type { PathData } from "../generated";

const SVG = "http://www.w3.org/2000/svg";
export const PLOT_WIDTH = 240;
export const PLOT_HEIGHT = 170;
const RIGHT = 8;
/** Room left of the tick labels for the rotated score axis title (10 px font at x = 10). */
const TITLE_ROOM = 15;
/** Gap between a tick label's end and the frame. */
const TICK_GAP = 5;
/** Widest character of the 10 px plot font (digits, "e", "-" are narrower). */
const CHAR_WIDTH = 6.2;
const TOP = 8;
const BOTTOM = 34;
/** Characters of the 10 px axis label that fit along the plot's height. */
const AXIS_CHARACTERS = 24;
/** A score range narrower than this fraction of its magnitude is drawn as constant. */
const FLAT = 1e-6;

export function svgElement<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
  className?: string,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, String(value));
  }
  if (className) {
    node.setAttribute("class", className);
  }
  return node;
}

export function label(
  x: number,
  y: number,
  text: string,
  anchor: string,
  className = "igw-plot-label",
): SVGTextElement {
  const node = svgElement("text", { x, y, "text-anchor": anchor }, className);
  node.textContent = text;
  return node;
}

/**
 * Round tick values covering [low, high]: steps of 1, 2 or 5 times a power
 * of ten, about `count` of them, and the range they span.
 */
export function niceTicks(
  low: number,
  high: number,
  count = 4,
): { ticks: number[]; labels: string[]; low: number; high: number } {
  const span = high - low;
  const rough = span / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => span / s <= count) ?? 10 * power;
  const first = Math.floor(low / step + 1e-9) * step;
  const last = Math.ceil(high / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i++) {
    ticks.push(Number((first + i * step).toFixed(decimalsOf(step))));
  }
  const labels = tickLabels(ticks, step);
  return { ticks, labels, low: first, high: last };
}

function decimalsOf(step: number): number {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

/**
 * Labels for `ticks` spaced by `step`, all distinct: with the step's
 * decimals (0.45, 0.50, 0.55; 0.0010001, 0.0010002 for a nearly flat score),
 * or, where the largest tick is below 1e-3 or from 1e4 on (as
 * `formatNumber` writes such numbers), in exponent form with as many digits
 * as the step needs beside the largest tick (1.00e-4, 1.50e-4).
 *
 * @example
 * tickLabels([0.0010001, 0.0010002], 1e-7); // ["0.0010001", "0.0010002"]
 */
export function tickLabels(ticks: readonly number[], step: number): string[] {
  const largest = Math.max(...ticks.map(Math.abs));
  if (largest >= 1e-3 && largest < 1e4) {
    return ticks.map((tick) => tick.toFixed(decimalsOf(step)));
  }
  let digits = Math.max(2, Math.floor(Math.log10(largest)) - Math.floor(Math.log10(step) + 1e-9));
  const write = (tick: number): string => (tick === 0 ? "0" : tick.toExponential(digits));
  // Rounding can still join two labels; a digit more parts them.
  while (new Set(ticks.map(write)).size < ticks.length && digits < 15) {
    digits += 1;
  }
  return ticks.map(write);
}

/** The plot's left margin: the axis title, the widest tick label and the gap. */
function leftMargin(labels: readonly string[]): number {
  return TITLE_ROOM + Math.max(...labels.map((text) => text.length)) * CHAR_WIDTH + TICK_GAP;
}

/**
 * The score axis's range: the data's, or around a constant score a range
 * that shows it is constant (a probability stays within 0..1).
 */
export function scoreRange(values: readonly number[]): { low: number; high: number } {
  let low = Math.min(...values);
  let high = Math.max(...values);
  const magnitude = Math.max(Math.abs(low), Math.abs(high));
  if (high - low <= FLAT * Math.max(magnitude, 1e-12)) {
    const pad = magnitude > 0 ? Math.max(0.1 * magnitude, 1e-3) : 1;
    const probability = low >= 0 && high <= 1;
    low = probability ? Math.max(0, low - pad) : low - pad;
    high = probability ? Math.min(1, high + pad) : high + pad;
  }
  return { low, high };
}

/**
 * The vertical axis's label for class `name`: "score of “cat”", the name
 * shortened with "…" where the whole would not fit along the axis.
 */
export function scoreAxisLabel(name: string): string {
  const room = AXIS_CHARACTERS - "score of “”".length;
  const chars = [...name];
  const shown = chars.length > room ? `${chars.slice(0, room - 1).join("")}…` : name;
  return `score of “${shown}”`;
}

/**
 * Draw into `svg` the frame of a plot of `scores` against a share from 0 to 1:
 * the score grid and its labels, the share at 0, ½ and 1 (written by
 * `shareLabel`), and both axes' names: `shareName`, and "score of “name”"
 * for class `name` (shortened to fit; the whole in its tooltip); return the
 * plot's coordinates.
 *
 * @example
 * const { x, y } = drawAxes(svg, [0.1, 0.9], String, "α", "cat");
 */
export function drawAxes(
  svg: SVGSVGElement,
  scores: readonly number[],
  shareLabel: (share: number) => string,
  shareName: string,
  name: string,
): { x: (share: number) => number; y: (score: number) => number } {
  const range = scoreRange(scores);
  const { ticks, labels, low, high } = niceTicks(range.low, range.high);
  const LEFT = leftMargin(labels);
  const width = PLOT_WIDTH - LEFT - RIGHT;
  const height = PLOT_HEIGHT - TOP - BOTTOM;
  const x = (share: number): number => LEFT + share * width;
  const y = (score: number): number => TOP + ((high - score) / (high - low)) * height;
  svg.append(svgElement("rect", { x: LEFT, y: TOP, width, height }, "igw-plot-frame"));
  ticks.forEach((tick, i) => {
    svg.append(
      svgElement("line", { x1: LEFT - 3, x2: x(1), y1: y(tick), y2: y(tick) }, "igw-plot-grid"),
      label(LEFT - TICK_GAP, y(tick) + 3, labels[i], "end", "igw-plot-label igw-plot-tick"),
    );
  });
  // The ends' labels start and end at the frame's corners, clear of the
  // lowest tick label and of the plot's right edge ("100 %").
  for (const [share, anchor] of [
    [0, "start"],
    [0.5, "middle"],
    [1, "end"],
  ] as const) {
    svg.append(label(x(share), TOP + height + 11, shareLabel(share), anchor));
  }
  const scoreAxis = label(0, 0, scoreAxisLabel(name), "middle", "igw-plot-label igw-plot-axis");
  const whole = svgElement("title", {});
  whole.textContent = `score of “${name}”`;
  scoreAxis.append(whole);
  scoreAxis.setAttribute("transform", `translate(10 ${TOP + height / 2}) rotate(-90)`);
  // Centred on the whole plot: the share axis's name is its longest text.
  svg.append(label(PLOT_WIDTH / 2, PLOT_HEIGHT - 4, shareName, "middle"), scoreAxis);
  return { x, y };
}

/**
 * Replace the contents of `svg` with the plot of `data` for class `name`
 * (the vertical axis says "score of “name”", see `drawAxes`).
 *
 * @example
 * drawPathPlot(svg, { alphas: [0, 1], mean: [0.1, 0.9], low: [0.1, 0.9], high: [0.1, 0.9],
 *                     baseline_score: 0.1, score: 0.9 }, "cat");
 */
export function drawPathPlot(svg: SVGSVGElement, data: PathData, name: string): void {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${PLOT_WIDTH} ${PLOT_HEIGHT}`);
  if (data.alphas.length === 0) {
    return;
  }
  const { x, y } = drawAxes(
    svg,
    [...data.low, ...data.high, data.baseline_score, data.score],
    String,
    "α: baseline (0) → image (1)",
    name,
  );
  const points = (values: number[]): string =>
    values.map((v, i) => `${x(data.alphas[i]).toFixed(1)},${y(v).toFixed(1)}`).join(" ");

  svg.append(
    svgElement(
      "line",
      { x1: x(0), x2: x(1), y1: y(data.score), y2: y(data.score) },
      "igw-plot-ref",
    ),
  );
  if (data.high.some((v, i) => v !== data.low[i])) {
    const band = `${points(data.high)} ${points(data.low).split(" ").reverse().join(" ")}`;
    svg.append(svgElement("polygon", { points: band }, "igw-plot-band"));
  }
  svg.append(svgElement("polyline", { points: points(data.mean) }, "igw-plot-line"));
}
