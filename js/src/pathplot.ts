// The saturation plot: the target score at each point of the straight path
// from the baseline (alpha = 0) to the image (alpha = 1). Drawn as SVG so it
// follows the theme's colours through CSS; its labels are text nodes.

import { formatNumber } from "./format";

export interface PathData {
  alphas: number[];
  mean: number[];
  low: number[];
  high: number[];
  baseline_score: number;
  score: number;
}

const SVG = "http://www.w3.org/2000/svg";
export const PLOT_WIDTH = 220;
export const PLOT_HEIGHT = 150;
const LEFT = 44;
const RIGHT = 8;
const TOP = 8;
const BOTTOM = 26;

function svgElement<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
  className?: string,
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    element.setAttribute(name, String(value));
  }
  if (className) {
    element.setAttribute("class", className);
  }
  return element;
}

function label(x: number, y: number, text: string, anchor: string): SVGTextElement {
  const element = svgElement("text", { x, y, "text-anchor": anchor }, "igw-plot-label");
  element.textContent = text;
  return element;
}

/**
 * Replace the contents of `svg` with the plot of `data`.
 *
 * @example
 * drawPathPlot(svg, { alphas: [0, 1], mean: [0.1, 0.9], low: [0.1, 0.9], high: [0.1, 0.9],
 *                     baseline_score: 0.1, score: 0.9 });
 */
export function drawPathPlot(svg: SVGSVGElement, data: PathData): void {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${PLOT_WIDTH} ${PLOT_HEIGHT}`);
  const count = data.alphas.length;
  if (count === 0) {
    return;
  }
  let lowest = Math.min(...data.low, data.baseline_score, data.score);
  let highest = Math.max(...data.high, data.baseline_score, data.score);
  if (highest - lowest < 1e-12) {
    lowest -= 0.5;
    highest += 0.5;
  }
  const width = PLOT_WIDTH - LEFT - RIGHT;
  const height = PLOT_HEIGHT - TOP - BOTTOM;
  const x = (alpha: number): number => LEFT + alpha * width;
  const y = (score: number): number => TOP + ((highest - score) / (highest - lowest)) * height;
  const points = (values: number[]): string =>
    values.map((v, i) => `${x(data.alphas[i]).toFixed(1)},${y(v).toFixed(1)}`).join(" ");

  svg.append(
    svgElement("rect", { x: LEFT, y: TOP, width, height }, "igw-plot-frame"),
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
  svg.append(
    label(LEFT - 4, TOP + 8, formatNumber(highest), "end"),
    label(LEFT - 4, TOP + height, formatNumber(lowest), "end"),
    label(x(0), PLOT_HEIGHT - 12, "0", "middle"),
    label(x(1) - 2, PLOT_HEIGHT - 12, "1", "middle"),
    label(LEFT + width / 2, PLOT_HEIGHT - 3, "α: baseline → image", "middle"),
  );
}
