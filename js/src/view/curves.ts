// The insertion and deletion curves of the methods shown (Petsiuk et al.
// 2018): the target score as the top-attributed pixels are inserted into a
// blurred copy (solid) or deleted from the image (dashed), against the share
// of pixels changed. One colour per method; the legend gives each curve's
// area. Drawn as SVG in the theme's colours; its labels are text nodes.

import { formatNumber } from "../format";
import type { Curve } from "../generated";
import { drawAxes, label, PLOT_HEIGHT, PLOT_WIDTH, svgElement } from "./pathplot";

/**
 * Height of one legend line under the plot; each method takes three (its
 * name, each area on a line of its own so that exponent-form areas fit the
 * plot's width), and the key of the line styles one more.
 */
const LEGEND_LINE = 13;
const LEGEND_LINES = (curves: number): number => 3 * curves + 1;
/** Room under the last legend line for its letters' descent. */
const LEGEND_DESCENT = 4;

/** A method's two areas, as the legend writes them under its name, one a line. */
export function areaLines(curve: Curve): [string, string] {
  return [
    `insertion area ${formatNumber(curve.insertion_auc)}`,
    `deletion area ${formatNumber(curve.deletion_auc)}`,
  ];
}

/** One sentence per method: its name and two areas, for the description. */
export function curveSummary(curve: Curve): string {
  return `${curve.title}: ${areaLines(curve).join(", ")}`;
}

/**
 * Replace the contents of `svg` with the curves of `curves` for class `name`
 * (the vertical axis says "score of “name”", see `drawAxes`).
 *
 * @example
 * drawCurvesPlot(svg, [{ explainer: "xrai", title: "XRAI", fractions: [0, 1],
 *   insertion: [0.1, 0.9], deletion: [0.9, 0.1], insertion_auc: 0.5, deletion_auc: 0.5 }],
 *   "cat");
 */
export function drawCurvesPlot(svg: SVGSVGElement, curves: readonly Curve[], name: string): void {
  svg.replaceChildren();
  const total = PLOT_HEIGHT + LEGEND_LINE * LEGEND_LINES(curves.length) + LEGEND_DESCENT;
  svg.setAttribute("viewBox", `0 0 ${PLOT_WIDTH} ${total}`);
  if (curves.length === 0) {
    return;
  }
  const { x, y } = drawAxes(
    svg,
    curves.flatMap((c) => [...c.insertion, ...c.deletion]),
    (share) => `${100 * share} %`,
    "pixels changed, most attributed first",
    name,
  );
  curves.forEach((curve, index) => {
    for (const [values, kind] of [
      [curve.insertion, "insertion"],
      [curve.deletion, "deletion"],
    ] as const) {
      const points = values
        .map((v, i) => `${x(curve.fractions[i]).toFixed(1)},${y(v).toFixed(1)}`)
        .join(" ");
      svg.append(
        svgElement("polyline", { points }, `igw-curve igw-curve-${index} igw-curve-${kind}`),
      );
    }
    const legend = PLOT_HEIGHT + LEGEND_LINE * (3 * index + 1);
    const [insertion, deletion] = areaLines(curve);
    svg.append(
      svgElement(
        "line",
        { x1: 2, x2: 16, y1: legend - 3, y2: legend - 3 },
        `igw-curve igw-curve-${index} igw-curve-insertion`,
      ),
      label(20, legend, curve.title, "start"),
      label(20, legend + LEGEND_LINE, insertion, "start"),
      label(20, legend + 2 * LEGEND_LINE, deletion, "start"),
    );
  });
  const key = PLOT_HEIGHT + LEGEND_LINE * LEGEND_LINES(curves.length);
  svg.append(label(2, key, "solid: insertion · dashed: deletion", "start"));
}
