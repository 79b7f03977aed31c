// @vitest-environment happy-dom
// The method menu and compare mode: the menus send their choices as compute
// options, the panels follow the shown result (titles, which panels, which
// plot), and the insertion and deletion curves are drawn with their areas.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Curve, WidgetState } from "../src/generated";
import { RENDER_DEFAULTS, renderMaps } from "../src/render";
import { mountView } from "../src/view";
import { areaLines, curveSummary, drawCurvesPlot } from "../src/view/curves";
import {
  contextOf,
  floats,
  HEIGHT,
  HOSTILE,
  makeState,
  query,
  recordCanvases,
  restoreCanvases,
  spiedModel,
  WIDTH,
} from "./fixtures";

const CURVES: Curve[] = [
  {
    explainer: "smoothgrad",
    title: "SmoothGrad",
    fractions: [0, 0.5, 1],
    insertion: [0.1, 0.5, 0.8],
    deletion: [0.8, 0.3, 0.1],
    insertion_auc: 0.475,
    deletion_auc: 0.375,
  },
  {
    explainer: "xrai",
    title: HOSTILE,
    fractions: [0, 0.5, 1],
    insertion: [0.1, 0.7, 0.8],
    deletion: [0.8, 0.2, 0.1],
    insertion_auc: 0.575,
    deletion_auc: 0.325,
  },
];

function comparing(): WidgetState {
  const base = makeState();
  return makeState({
    explainer: "smoothgrad",
    compare: "xrai",
    summary: {
      ...base.summary,
      explainer: "smoothgrad",
      explainer_title: "SmoothGrad",
      compare: "xrai",
      compare_title: HOSTILE,
      delta: null,
      method: "",
    },
    compare_positive: base.gradient_negative,
    compare_negative: base.gradient_positive,
    curves: CURVES,
  });
}

function mount(state = makeState()) {
  const spied = spiedModel(state);
  const el = document.createElement("div");
  document.body.append(el);
  mountView(spied.model, el, { computeEnabled: true });
  return { ...spied, el, canvases: [...el.querySelectorAll("canvas")] };
}

beforeEach(recordCanvases);

afterEach(() => {
  restoreCanvases();
  document.body.replaceChildren();
});

describe("the method menus", () => {
  it("offer the methods by title, compare with 'off' first, and send the choice", () => {
    const { el, saves, model } = mount();
    const explainer = query<HTMLSelectElement>(el, "select.igw-explainer");
    const compare = query<HTMLSelectElement>(el, "select.igw-compare");
    expect([...explainer.options].map((o) => [o.value, o.text])).toEqual([
      ["integrated_gradients", "Integrated gradients"],
      ["smoothgrad", "SmoothGrad"],
      ["xrai", "XRAI"],
    ]);
    expect([...compare.options].map((o) => o.text)).toEqual([
      "off",
      "Integrated gradients",
      "SmoothGrad",
      "XRAI",
    ]);
    // A method cannot be compared with itself.
    expect(compare.options[1].disabled).toBe(true);
    compare.value = "xrai";
    compare.dispatchEvent(new Event("change"));
    expect(model.get("compare")).toBe("xrai");
    expect(saves).toHaveBeenCalledTimes(1);
    explainer.value = "smoothgrad";
    explainer.dispatchEvent(new Event("change"));
    expect(model.get("explainer")).toBe("smoothgrad");
    expect(compare.options[1].disabled).toBe(false);
    expect(compare.options[2].disabled).toBe(true);
  });

  it("say which compute options the chosen methods do not use", () => {
    const { el, model } = mount();
    const hint = (name: string): string =>
      query(el, `.igw-compute`)
        .querySelector(`.igw-${name}`)
        ?.closest(".igw-field")
        ?.querySelector(".igw-hint")?.textContent ?? "";
    expect(hint("steps")).toBe("");
    model.set("explainer", "smoothgrad");
    expect(hint("steps")).toBe("no effect on SmoothGrad");
    expect(hint("method")).toBe("no effect on SmoothGrad");
    model.set("compare", "xrai");
    expect(hint("steps")).toBe("");
    // XRAI ranks regions of integrated gradients: it takes the rule, not the runs.
    expect(hint("method")).toBe("");
    expect(hint("runs")).toBe("no effect on SmoothGrad or XRAI");
  });

  it("say which of several computations the progress counts", () => {
    const { el, model } = mount();
    model.set("computing", true);
    model.set("progress", [12, 39]);
    const text = query(el, ".igw-progress-text");
    expect(text.textContent).toBe("12 / 39 points");
    model.set("progress_stage", "3 of 4: SmoothGrad: insertion and deletion");
    expect(text.textContent).toBe("3 of 4: SmoothGrad: insertion and deletion · 12 / 39 points");
  });
});

describe("compare mode", () => {
  it("shows the two methods side by side with the same display options", () => {
    const state = comparing();
    const { el, canvases } = mount(state);
    const figures = [...el.querySelectorAll<HTMLElement>("figure.igw-panel")];
    const visible = figures
      .filter((f) => !f.hidden)
      .map((f) => f.querySelector(".igw-panel-title")?.textContent);
    expect(visible).toEqual(["Input", "SmoothGrad", HOSTILE, "Insertion and deletion"]);
    const options = { ...RENDER_DEFAULTS, clip_above_percentile: 95 };
    for (const [index, panel] of [
      [2, "explainer"],
      [3, "compare"],
    ] as const) {
      const expected = renderMaps(
        new Uint8Array((state.image_rgb as DataView).buffer),
        floats(state[`${panel}_positive`]),
        floats(state[`${panel}_negative`]),
        WIDTH,
        HEIGHT,
        options,
      );
      expect(contextOf(canvases[index]).frames[0]).toEqual(expected);
      expect(canvases[index].getAttribute("aria-label")).toBe(index === 2 ? "SmoothGrad" : HOSTILE);
    }
    // The plain gradient gives way; no completeness error without IG.
    expect(canvases[1].closest("figure")?.hidden).toBe(true);
    expect(query<HTMLElement>(el, ".igw-delta").hidden).toBe(true);
    expect(query(el, ".igw-details").textContent).toContain(`SmoothGrad and ${HOSTILE}`);
  });

  it("shows a stored result without a plain gradient as the input and its map", () => {
    const base = makeState();
    const { el } = mount(
      makeState({
        explainer: "gradcam",
        summary: {
          ...base.summary,
          explainer: "gradcam",
          explainer_title: "Grad-CAM",
          delta: null,
          gradients: false,
          method: "",
        },
        gradient_positive: new DataView(new ArrayBuffer(0)),
        gradient_negative: new DataView(new ArrayBuffer(0)),
        curves: [],
      }),
    );
    const visible = [...el.querySelectorAll<HTMLElement>("figure.igw-panel")]
      .filter((f) => !f.hidden)
      .map((f) => f.querySelector(".igw-panel-title")?.textContent);
    // Without curves (a stored result has none) there is no plot either.
    expect(visible).toEqual(["Input", "Grad-CAM"]);
  });

  it("plots both methods' curves, with their areas, and says them in text", () => {
    const { el, model } = mount(comparing());
    const plot = query<SVGSVGElement>(el, ".igw-plot");
    expect(plot.querySelectorAll("polyline.igw-curve")).toHaveLength(4);
    expect(plot.querySelectorAll("polyline.igw-curve-1.igw-curve-deletion")).toHaveLength(1);
    // Each method's name, then its two areas on the lines below (the plot stays narrow).
    const legend = [...plot.querySelectorAll("text")].map((t) => t.textContent);
    for (const curve of CURVES) {
      const at = legend.indexOf(curve.title);
      expect(legend.slice(at + 1, at + 3)).toEqual(areaLines(curve));
    }
    expect(curveSummary(CURVES[0])).toBe("SmoothGrad: insertion area 0.475, deletion area 0.375");
    const description = query(el, ".igw-path .igw-description").textContent ?? "";
    expect(description).toContain("insertion area 0.475, deletion area 0.375");
    // Model text stays text.
    expect(plot.querySelector("img")).toBeNull();
    // Back to integrated gradients alone: the path again.
    model.set("summary", makeState().summary);
    expect(query(el, ".igw-path .igw-panel-title").textContent).toBe("Score along the path");
    expect(plot.querySelectorAll("polyline.igw-curve")).toHaveLength(0);
  });
});

describe("the curves plot", () => {
  it("maps the fractions onto the width and labels both axes", () => {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    drawCurvesPlot(svg, CURVES.slice(0, 1), "cat");
    const [insertion] = svg.querySelectorAll("polyline");
    const xs = (insertion.getAttribute("points") ?? "")
      .split(" ")
      .map((p) => Number(p.split(",")[0]));
    expect(xs[1] - xs[0]).toBeCloseTo(xs[2] - xs[1], 5);
    const labels = [...svg.querySelectorAll("text")].map((t) => t.textContent);
    expect(labels).toContain("pixels changed, most attributed first");
    expect(svg.querySelector(".igw-plot-axis")?.firstChild?.textContent).toBe("score of “cat”");
    expect(svg.querySelector(".igw-plot-axis title")?.textContent).toBe("score of “cat”");
    expect(labels).toContain("50 %");
    drawCurvesPlot(svg, [], "x");
    expect(svg.childElementCount).toBe(0);
  });
});
