// @vitest-environment happy-dom
// The view on a page-local model: what it draws, what it sends, what it says
// (keys, descriptions, readouts, refused values), and that model text stays
// text.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatSigned, isolate, keyLabels } from "../src/format";
import { LocalModel } from "../src/local-model";
import { colourKey, RENDER_DEFAULTS, renderMaps } from "../src/render";
import { mountView } from "../src/view";
import { wholeNumberProblem } from "../src/view/fields";
import {
  drawPathPlot,
  niceTicks,
  scoreAxisLabel,
  scoreRange,
  tickLabels,
} from "../src/view/pathplot";
import {
  contextOf,
  control,
  floats,
  HEIGHT,
  HOSTILE,
  makeState,
  PIXELS,
  query,
  recordCanvases,
  restoreCanvases,
  spiedModel,
  WIDTH,
} from "./fixtures";

function mount(state = makeState(), computeEnabled = true) {
  const spied = spiedModel(state);
  const el = document.createElement("div");
  document.body.append(el);
  const dispose = mountView(spied.model, el, { computeEnabled });
  const canvases = [...el.querySelectorAll("canvas")];
  return { ...spied, el, dispose, canvases };
}

function change(node: HTMLInputElement | HTMLSelectElement, value: string, event = "change") {
  node.value = value;
  node.dispatchEvent(new Event(event));
}

beforeEach(recordCanvases);

afterEach(() => {
  restoreCanvases();
  document.body.replaceChildren();
});

describe("drawing", () => {
  it("draws the input and both attribution panels as the renderer does", () => {
    const state = makeState();
    const { canvases } = mount(state);
    // The compare panel waits, hidden and not drawn, for compare mode; the spread
    // panel for the Stability button.
    expect(canvases).toHaveLength(5);
    for (const waiting of canvases.slice(3)) {
      expect(waiting.closest("figure")?.hidden).toBe(true);
      expect(contextOf(waiting).frames).toHaveLength(0);
    }
    for (const canvas of canvases.slice(0, 3)) {
      expect([canvas.width, canvas.height]).toEqual([WIDTH, HEIGHT]);
      expect(contextOf(canvas).frames).toHaveLength(1);
    }
    const image = new Uint8Array((state.image_rgb as DataView).buffer);
    const input = contextOf(canvases[0]).frames[0];
    for (let i = 0; i < PIXELS; i++) {
      expect([...input.subarray(i * 4, i * 4 + 4)]).toEqual([
        ...image.subarray(i * 3, i * 3 + 3),
        255,
      ]);
    }
    const options = { ...RENDER_DEFAULTS, clip_above_percentile: 95 };
    for (const [index, panel] of [
      [1, "gradient"],
      [2, "explainer"],
    ] as const) {
      const expected = renderMaps(
        image,
        floats(state[`${panel}_positive`]),
        floats(state[`${panel}_negative`]),
        WIDTH,
        HEIGHT,
        options,
      );
      expect(contextOf(canvases[index]).frames[0]).toEqual(expected);
    }
  });

  it("draws the spread of several runs as a positive map, and says how stable the map is", async () => {
    const spreadValues = Float32Array.from({ length: PIXELS }, (_, i) => (i % 7) / 3);
    const stable = {
      explainer: "integrated_gradients",
      title: "Integrated gradients",
      runs: ["seed=0", "seed=1", "seed=2"],
      rank_correlation: 0.8123,
      top_share: 0.6,
      top_percent: 5,
      points_used: 153,
      elapsed_s: 0.3,
    };
    const state = makeState({
      polarity: "negative",
      stability_shown: stable,
      stability_spread: new DataView(spreadValues.buffer),
    });
    const { el, canvases, model, sends } = mount(state);
    const spread = canvases[4];
    const figure = spread.closest("figure") as HTMLElement;
    expect(figure.hidden).toBe(false);
    expect(figure.querySelector(".igw-panel-title")?.textContent).toBe("Spread over 3 runs");
    const image = new Uint8Array((state.image_rgb as DataView).buffer);
    // Whatever the polarity shown, the spread is drawn as the positive map it is.
    const options = {
      ...RENDER_DEFAULTS,
      clip_above_percentile: 95,
      polarity: "positive" as const,
    };
    const none = new Float32Array(PIXELS);
    expect(contextOf(spread).frames[0]).toEqual(
      renderMaps(image, spreadValues, none, WIDTH, HEIGHT, options),
    );
    expect(figure.querySelector(".igw-description")?.textContent).toBe(
      "How much the Integrated gradients map varies over 3 runs (seed=0, seed=1, seed=2): the " +
        "per-pixel standard deviation of the map summed over channels, drawn stronger where it " +
        "varies more. Mean rank correlation between the runs 0.812; 60 % of the top 5 % pixels " +
        "stay top in every run.",
    );
    // The button asks the kernel; a new result without a spread hides the panel.
    query<HTMLButtonElement>(el, "button.igw-stability-button").click();
    expect(sends).toHaveBeenLastCalledWith({ type: "stability" });
    model.set("computing", true);
    model.set("progress_stage", "Stability: 5 runs of Integrated gradients");
    expect(query(el, ".igw-busy-note").textContent).toBe(
      "Computing the spread of the shown map (Stability: 5 runs of Integrated gradients); " +
        `the panels show “${isolate("tabby cat")}” meanwhile.`,
    );
    const stabilityButton = query<HTMLButtonElement>(el, "button.igw-stability-button");
    expect(stabilityButton.disabled).toBe(true);
    model.set("computing", false);
    expect(stabilityButton.disabled).toBe(false);
    // A method without a seed has nothing to draw: the button says so, greyed.
    const summary = model.get("summary");
    model.set("summary", { ...summary, explainer: "blur_ig", explainer_title: "Blur IG" });
    expect(stabilityButton.disabled).toBe(true);
    expect(stabilityButton.title).toBe("Blur IG has no seed to vary: its runs would be identical");
    model.set("stability_shown", null);
    model.set("stability_spread", new DataView(new ArrayBuffer(0)));
    await Promise.resolve();
    expect(figure.hidden).toBe(true);
  });

  it("redraws on a display-option change and only syncs the trait", async () => {
    const { saves, sends, el, canvases, model } = mount();
    const ig = contextOf(canvases[2]);
    const before = ig.frames[0];
    const slider = query<HTMLInputElement>(el, "input.igw-clip-below");
    change(slider, "60", "input");
    await Promise.resolve();
    expect(model.get("clip_below_percentile")).toBe(60);
    expect(ig.frames).toHaveLength(2);
    expect(ig.frames[1]).not.toEqual(before);
    expect(saves).not.toHaveBeenCalled();
    slider.dispatchEvent(new Event("change"));
    expect(saves).toHaveBeenCalledTimes(1);
    expect(sends).not.toHaveBeenCalled();
    // The input does not depend on display options: it is not drawn again.
    expect(contextOf(canvases[0]).frames).toHaveLength(1);
  });

  it("updates the colour key in place, and redraws the input only for new data", async () => {
    const { el, model, canvases } = mount();
    const row = query(el, ".igw-panel-explainer .igw-key-entry");
    const high = query(row, ".igw-key-high").textContent;
    model.set("clip_above_percentile", 50);
    await Promise.resolve();
    expect(query(el, ".igw-panel-explainer .igw-key-entry")).toBe(row);
    expect(query(row, ".igw-key-high").textContent).not.toBe(high);
    model.set("polarity", "both");
    await Promise.resolve();
    expect(el.querySelectorAll(".igw-panel-explainer .igw-key-entry")).toHaveLength(2);
    expect(contextOf(canvases[0]).frames).toHaveLength(1);
    model.set("image_rgb", new DataView(new Uint8Array(PIXELS * 3).fill(9).buffer));
    await Promise.resolve();
    const input = contextOf(canvases[0]).frames;
    expect(input).toHaveLength(2);
    expect(input[1][0]).toBe(9);
  });

  it("keeps clip below under clip above and shows percentages with %", () => {
    const { model, el } = mount();
    const slider = query<HTMLInputElement>(el, "input.igw-clip-below");
    change(slider, "99.5", "input");
    expect(model.get("clip_below_percentile")).toBe(94.9);
    expect(slider.value).toBe("94.9");
    expect(slider.getAttribute("aria-valuetext")).toBe("94.9 %");
    expect(slider.closest("label")?.querySelector(".igw-value")?.textContent).toBe("94.9 %");
  });

  it("coalesces several changes into one redraw", async () => {
    const { model, canvases } = mount();
    model.set("polarity", "both");
    model.set("overlay", false);
    model.set("picture_style", "keras");
    await Promise.resolve();
    const frames = contextOf(canvases[2]).frames;
    expect(frames).toHaveLength(2);
    const state = makeState();
    const expected = renderMaps(
      new Uint8Array((state.image_rgb as DataView).buffer),
      floats(state.explainer_positive),
      floats(state.explainer_negative),
      WIDTH,
      HEIGHT,
      {
        ...RENDER_DEFAULTS,
        clip_above_percentile: 95,
        polarity: "both",
        overlay: false,
        style: "keras",
      },
    );
    expect(frames[1]).toEqual(expected);
  });

  it("offers the styles and shows each style's colours until one is chosen", async () => {
    const { model, el, saves } = mount();
    const style = control<HTMLSelectElement>(el, "style");
    expect([...style.options].map((o) => o.value)).toEqual(["heatmap", "keras"]);
    const positive = control<HTMLInputElement>(el, "positive colour");
    expect(positive.value).toBe("#ff3000");
    change(style, "keras");
    expect(model.get("picture_style")).toBe("keras");
    expect(positive.value).toBe("#00ff00");
    const reset = query<HTMLButtonElement>(el, ".igw-style-colors");
    expect(reset.hidden).toBe(true);
    change(positive, "#102030", "input");
    positive.dispatchEvent(new Event("change"));
    expect(model.get("positive_color")).toEqual([16, 32, 48]);
    expect(reset.hidden).toBe(false);
    reset.click();
    expect(model.get("positive_color")).toBeNull();
    expect(positive.value).toBe("#00ff00");
    expect(saves).toHaveBeenCalled();
  });
});

describe("what the view says", () => {
  it("inserts class names and messages as text", () => {
    const { el, model } = mount(
      makeState({
        summary: { ...makeState().summary, predicted_label: HOSTILE },
        error: `model: ${HOSTILE}`,
      }),
    );
    const options = [...query<HTMLSelectElement>(el, "select.igw-class").options];
    expect(options.map((option) => option.text)).toEqual([
      `${isolate("tabby cat")} (0.800)`,
      `${isolate(HOSTILE)} (0.150)`,
    ]);
    expect(query(el, ".igw-predicted-name").textContent).toBe(isolate(HOSTILE));
    expect(query(el, ".igw-error").textContent).toBe(`model: ${HOSTILE}`);
    model.set("notice", HOSTILE);
    expect(query(el, ".igw-notice").textContent).toBe(HOSTILE);
    expect(el.querySelector("b, img")).toBeNull();
  });

  it("flags a completeness error above 5 % and offers auto steps, once", () => {
    const { el, model, sends } = mount(
      makeState({ summary: { ...makeState().summary, delta: 0.38 } }),
    );
    const delta = query(el, ".igw-delta");
    expect(delta.textContent).toBe(
      "completeness error Δ 38 % — too coarse: the attributions do not add up",
    );
    expect(delta.classList.contains("igw-delta-high")).toBe(true);
    const remedy = query<HTMLButtonElement>(el, ".igw-auto-steps");
    expect(remedy.hidden).toBe(false);
    remedy.click();
    expect(model.get("steps")).toBe("auto");
    expect(sends).toHaveBeenLastCalledWith({ type: "compute" });
    // Already "auto" (at its cap): no button that would do nothing.
    expect(remedy.hidden).toBe(true);
  });

  it("keeps Δ within 5 % plain, without a remedy", () => {
    const { el } = mount(makeState());
    expect(query(el, ".igw-delta").textContent).toBe("completeness error Δ 0.4 %");
    expect(query<HTMLButtonElement>(el, ".igw-auto-steps").hidden).toBe(true);
  });

  it("counts the model's points in words: one point, many points", () => {
    const { el } = mount(makeState());
    expect(query(el, ".igw-details").textContent).toBe(
      "51 points · Integrated gradients (trapezoid) · 0.12 s",
    );
    const summary = {
      ...makeState().summary,
      explainer: "gradcam",
      explainer_title: "Grad-CAM",
      method: "",
      points_used: 1,
    };
    const single = mount(makeState({ summary })).el;
    expect(query(single, ".igw-details").textContent).toBe("1 point · Grad-CAM · 0.12 s");
  });

  it("says when the score falls and offers the polarity that shows it", () => {
    const note = `The score of '${HOSTILE}' falls from the baseline to the image: the attributions add up to -0.660.`;
    const { el, model } = mount(
      makeState({ summary: { ...makeState().summary, total: -0.66, falling_note: note } }),
    );
    const falling = query<HTMLElement>(el, ".igw-falling");
    expect(falling.hidden).toBe(false);
    expect(query(falling, ".igw-falling-text").textContent).toBe(note);
    expect(el.querySelector("b, img")).toBeNull();
    const show = query<HTMLButtonElement>(falling, ".igw-show-negative");
    expect(show.hidden).toBe(false);
    show.click();
    expect(model.get("polarity")).toBe("negative");
    expect(show.hidden).toBe(true);
    expect(query<HTMLElement>(mount(makeState()).el, ".igw-falling").hidden).toBe(true);
  });

  it("draws a colour key under each attribution panel, from the renderer's key", () => {
    const state = makeState({ polarity: "both" });
    const { el } = mount(state);
    for (const panel of ["gradient", "explainer"] as const) {
      const figure = query(el, `.igw-panel-${panel}`);
      const entries = colourKey(
        floats(state[`${panel}_positive`]),
        floats(state[`${panel}_negative`]),
        { ...RENDER_DEFAULTS, clip_above_percentile: 95, polarity: "both" },
      );
      const rows = [...figure.querySelectorAll(".igw-key-entry")];
      expect(rows).toHaveLength(2);
      rows.forEach((row, i) => {
        // In plain words about the explained class (model text, set as text).
        const labels = keyLabels(entries[i], isolate("tabby cat"));
        expect(query(row, ".igw-key-meaning").textContent).toBe(labels.meaning);
        expect(keyLabels(entries[i], "tabby cat").meaning).toBe(
          i === 0
            ? "red: raises the score of 'tabby cat'"
            : "blue: lowers the score of 'tabby cat'",
        );
        expect(query(row, ".igw-key-top").textContent?.replaceAll("\u00a0", " ")).toBe(labels.top);
        // A no-break space keeps "1.3 %" on one line.
        const spaced = (selector: string) =>
          query(row, selector).textContent?.replaceAll("\u00a0", " ");
        expect(spaced(".igw-key-low")).toBe(`${labels.low}${labels.low_share}`);
        expect(spaced(".igw-key-high")).toBe(`${labels.high}${labels.high_share}`);
        expect(query(row, ".igw-key-high").textContent).toContain(
          i === 0 ? "strongest red: " : "strongest blue: ",
        );
        expect(query(row, ".igw-key-high").textContent).not.toMatch(/ %/);
        expect(query<HTMLElement>(row, ".igw-key-bar").getAttribute("aria-hidden")).toBe("true");
      });
      expect(rows[1].textContent).toContain("lowers the score");
    }
  });

  it("describes each panel: which class, and how concentrated the attribution is", () => {
    const state = makeState();
    const { el } = mount(state);
    const canvas = query<HTMLCanvasElement>(el, ".igw-panel-explainer canvas");
    expect(canvas.getAttribute("role")).toBe("img");
    expect(canvas.getAttribute("aria-label")).toBe("Integrated gradients");
    const description = document.getElementById(canvas.getAttribute("aria-describedby") ?? "");
    const [entry] = colourKey(floats(state.explainer_positive), floats(state.explainer_negative), {
      ...RENDER_DEFAULTS,
      clip_above_percentile: 95,
    });
    expect(description?.textContent).toBe(
      `Integrated gradients for “${isolate("tabby cat")}”: the strongest 5 % of pixels hold ` +
        `${Number(entry.top_share.toPrecision(3))} % of the positive total.`,
    );
    const input = query<HTMLCanvasElement>(el, ".igw-panel-input canvas");
    const inputDescription = document.getElementById(input.getAttribute("aria-describedby") ?? "");
    expect(inputDescription?.textContent).toBe("The explained image, 5 × 4 pixels.");
    const plot = query(el, "svg.igw-plot");
    expect(document.getElementById(plot.getAttribute("aria-describedby") ?? "")?.textContent).toBe(
      `The score of “${isolate("tabby cat")}” goes from 0.100 at the baseline to 0.800 at the image.`,
    );
  });

  it("reads values under the pointer with their rank, and clears on leave", () => {
    const state = makeState();
    const { el, canvases } = mount(state);
    canvases[2].getBoundingClientRect = () =>
      ({ left: 0, top: 0, width: 50, height: 40 }) as DOMRect;
    canvases[2].dispatchEvent(new MouseEvent("pointermove", { clientX: 31, clientY: 25 }));
    const i = 2 * WIDTH + 3;
    const ig = floats(state.explainer_positive)[i] - floats(state.explainer_negative)[i];
    const magnitudes = Array.from({ length: PIXELS }, (_, j) =>
      Math.fround(
        Math.abs(floats(state.explainer_positive)[j] - floats(state.explainer_negative)[j]),
      ),
    );
    const below = magnitudes.filter((m) => m < Math.fround(Math.abs(ig))).length;
    const text = query(el, ".igw-readout").textContent ?? "";
    expect(text.startsWith("x 3, y 2 · channel mean: gradient ")).toBe(true);
    expect(text).toContain(
      `IG ${formatSigned(ig)} (stronger than ${Number(((100 * below) / PIXELS).toPrecision(3))} % of pixels)`,
    );
    canvases[2].dispatchEvent(new MouseEvent("pointerleave"));
    expect(query(el, ".igw-readout").textContent).toBe(
      "Hover over a panel to read the values under the pointer.",
    );
  });

  it("announces no readout, value or key (no live regions but errors and status)", () => {
    const { el } = mount();
    expect(el.querySelector("output")).toBeNull();
    const live = [...el.querySelectorAll("[aria-live], [role=alert], [role=status]")].map(
      (node) => node.className,
    );
    expect(live.sort()).toEqual(["igw-busy-note", "igw-error", "igw-notice"]);
  });

  it("names every control by its own label", () => {
    const { el } = mount();
    const names = [...el.querySelectorAll("input, select")].map((node) => {
      const label = node.closest("label");
      return label?.querySelector(".igw-field-name")?.textContent;
    });
    expect(names).toEqual([
      "Explain",
      "against",
      "style",
      "polarity",
      "clip above",
      "clip below",
      "cleanup",
      "window (px)",
      "outlines",
      "outlined area",
      "on the image",
      "patch (px)",
      "positive colour",
      "negative colour",
      "attribution",
      "compare with",
      "steps",
      "auto steps",
      "baseline",
      "runs",
      "method",
    ]);
    // Each label holds one control, so its name is nothing but its text.
    for (const label of el.querySelectorAll("label")) {
      expect(label.querySelectorAll("input, select")).toHaveLength(1);
    }
  });

  it("plots the path with labelled axes and round ticks", () => {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    drawPathPlot(
      svg,
      {
        alphas: [0, 0.5, 1],
        mean: [0, 2, 4],
        low: [0, 1, 4],
        high: [0, 3, 4],
        baseline_score: 0,
        score: 4,
      },
      "cat",
    );
    expect(svg.querySelector("polygon")).not.toBeNull();
    // A text's own words, without its tooltip.
    const labels = [...svg.querySelectorAll("text")].map((t) => t.firstChild?.textContent);
    expect(labels).toEqual(expect.arrayContaining(["0", "2", "4", "0.5", "1", "score of “cat”"]));
    // A long class name is shortened to fit along the axis; its tooltip has it whole.
    const long = "German short-haired pointer";
    drawPathPlot(
      svg,
      { alphas: [0, 1], mean: [0, 1], low: [0, 1], high: [0, 1], baseline_score: 0, score: 1 },
      long,
    );
    const axis = svg.querySelector<SVGTextElement>(".igw-plot-axis");
    expect(axis?.firstChild?.textContent).toBe("score of “German short…”");
    expect(axis?.querySelector("title")?.textContent).toBe(`score of “${long}”`);
    expect(scoreAxisLabel("x".repeat(13))).toHaveLength(24);
    expect(labels).toContain("α: baseline (0) → image (1)");
  });

  it("shows a constant score on a sensible scale", () => {
    expect(scoreRange([0.5, 0.5, 0.5])).toEqual({ low: 0.45, high: 0.55 });
    expect(niceTicks(0.45, 0.55).ticks).toEqual([0.45, 0.5, 0.55]);
    expect(scoreRange([0, 0])).toEqual({ low: 0, high: 1 });
    expect(scoreRange([-3, -3]).low).toBeCloseTo(-3.3);
    expect(niceTicks(0.1, 0.8)).toEqual({
      ticks: [0, 0.2, 0.4, 0.6, 0.8],
      labels: ["0.0", "0.2", "0.4", "0.6", "0.8"],
      low: 0,
      high: 0.8,
    });
    expect(niceTicks(2e-6, 9e-6).labels).toEqual([
      "2.00e-6",
      "4.00e-6",
      "6.00e-6",
      "8.00e-6",
      "1.00e-5",
    ]);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    drawPathPlot(
      svg,
      {
        alphas: [0, 1],
        mean: [0.5, 0.5],
        low: [0.5, 0.5],
        high: [0.5, 0.5],
        baseline_score: 0.5,
        score: 0.5,
      },
      "score",
    );
    const ticks = [...svg.querySelectorAll("text")].map((t) => t.textContent);
    expect(ticks).toEqual(expect.arrayContaining(["0.45", "0.50", "0.55"]));
    expect(ticks.join(" ")).not.toMatch(/0\.501|-0\.499/);
  });
  it("writes tick labels that tell every tick apart: flat, tiny and negative scores", () => {
    // A nearly flat score: its ticks differ in the seventh decimal.
    expect(niceTicks(0.0010001, 0.0010004).labels).toEqual([
      "0.0010001",
      "0.0010002",
      "0.0010003",
      "0.0010004",
    ]);
    expect(niceTicks(1.0000001, 1.0000004).labels).toEqual([
      "1.0000001",
      "1.0000002",
      "1.0000003",
      "1.0000004",
    ]);
    // Tiny scores in exponent form, as formatNumber writes them.
    expect(niceTicks(1.2e-4, 3.1e-4).labels).toEqual([
      "1.00e-4",
      "1.50e-4",
      "2.00e-4",
      "2.50e-4",
      "3.00e-4",
      "3.50e-4",
    ]);
    expect(niceTicks(-3e-4, -1e-4).labels).toEqual([
      "-3.00e-4",
      "-2.50e-4",
      "-2.00e-4",
      "-1.50e-4",
      "-1.00e-4",
    ]);
    expect(niceTicks(-2.1, -0.4).labels).toEqual(["-2.5", "-2.0", "-1.5", "-1.0", "-0.5", "0.0"]);
    expect(niceTicks(12000, 54000).labels).toEqual(["0", "2.00e+4", "4.00e+4", "6.00e+4"]);
    // Three significant digits would join these two; a digit more parts them.
    expect(tickLabels([1.0001e-5, 1.0002e-5], 1e-9)).toEqual(["1.0001e-5", "1.0002e-5"]);
    // The plot's left margin grows with its widest tick label, so the rotated
    // axis title (at x = 10) stays clear of them.
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    const flat = [0.0010001, 0.0010004];
    drawPathPlot(
      svg,
      {
        alphas: [0, 1],
        mean: flat,
        low: flat,
        high: flat,
        baseline_score: flat[0],
        score: flat[1],
      },
      "cat",
    );
    const ticks = [...svg.querySelectorAll(".igw-plot-tick")];
    expect(new Set(ticks.map((t) => t.textContent)).size).toBe(ticks.length);
    const frame = Number(svg.querySelector(".igw-plot-frame")?.getAttribute("x"));
    expect(frame).toBeGreaterThan(15 + "0.0010001".length * 6);
  });
});

describe("inputs", () => {
  it("sends compute and cancel as messages and a class choice as a trait", () => {
    const { model, saves, sends, el } = mount();
    const classes = query<HTMLSelectElement>(el, "select.igw-class");
    change(classes, "4");
    expect(model.get("target")).toBe(4);
    expect(saves).toHaveBeenCalledTimes(1);
    expect(sends).not.toHaveBeenCalled();
    const steps = control<HTMLInputElement>(el, "steps");
    change(steps, "120");
    expect(model.get("steps")).toBe(120);
    steps.value = "64";
    steps.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(model.get("steps")).toBe(64);
    query<HTMLButtonElement>(el, ".igw-compute-button").click();
    expect(sends).toHaveBeenLastCalledWith({ type: "compute" });
    model.set("computing", true);
    const cancel = query<HTMLButtonElement>(el, ".igw-cancel");
    expect(cancel.hidden).toBe(false);
    expect(classes.disabled).toBe(true);
    cancel.click();
    expect(sends).toHaveBeenLastCalledWith({ type: "cancel" });
  });

  it("offers every other class to contrast with, and sends the choice as a trait", () => {
    const { model, saves, el } = mount();
    const against = query<HTMLSelectElement>(el, "select.igw-against");
    expect([...against.options].map((option) => [option.value, option.text])).toEqual([
      ["", "none"],
      ["4", isolate(HOSTILE)],
    ]);
    expect(against.value).toBe("");
    change(against, "4");
    expect(model.get("against")).toBe(4);
    expect(saves).toHaveBeenCalledTimes(1);
    // Choosing the contrasted class to explain drops the contrast, in the same update.
    change(query<HTMLSelectElement>(el, "select.igw-class"), "4");
    expect([model.get("target"), model.get("against")]).toEqual([4, null]);
    expect(saves).toHaveBeenCalledTimes(2);
    expect([...against.options].map((option) => option.value)).toEqual(["", "1"]);
    change(against, "");
    expect(model.get("against")).toBeNull();
    model.set("computing", true);
    expect(against.disabled).toBe(true);
  });

  it("states completeness for the difference of a contrast", () => {
    const summary = {
      ...makeState().summary,
      against: 4,
      against_label: HOSTILE,
      delta: 0.012,
    };
    const { el } = mount(makeState({ against: 4, summary }));
    expect(query(el, ".igw-delta").textContent).toBe(
      `completeness error Δ 1.2 % of score(${isolate("tabby cat")}) − score(${isolate(HOSTILE)})`,
    );
    expect(query<HTMLSelectElement>(el, "select.igw-against").value).toBe("4");
  });

  it("steps number boxes by ten with PageUp and PageDown, and applies them", () => {
    const { model, el } = mount();
    const steps = control<HTMLInputElement>(el, "steps");
    const page = new KeyboardEvent("keydown", { key: "PageUp", cancelable: true });
    steps.dispatchEvent(page);
    expect(page.defaultPrevented).toBe(true);
    expect(model.get("steps")).toBe(60);
    steps.dispatchEvent(new KeyboardEvent("keydown", { key: "PageDown" }));
    steps.dispatchEvent(new KeyboardEvent("keydown", { key: "PageDown" }));
    expect(model.get("steps")).toBe(40);
  });

  it("keeps a refused value visible and marked, with its message, until corrected", () => {
    const { model, el, sends } = mount();
    const steps = control<HTMLInputElement>(el, "steps");
    const compute = query<HTMLButtonElement>(el, ".igw-compute-button");
    const blocked = query<HTMLElement>(el, ".igw-blocked");
    const messageOf = (node: HTMLElement) =>
      document.getElementById((node.getAttribute("aria-describedby") ?? "").split(" ")[1]);
    change(steps, "-5");
    // Refused here, in the field's words; the kernel keeps its value.
    expect(model.get("steps")).toBe(50);
    expect(steps.value).toBe("-5");
    expect(steps.getAttribute("aria-invalid")).toBe("true");
    expect(messageOf(steps)?.textContent).toBe("steps: a whole number from 1 to 10,000; got -5");
    expect(query<HTMLElement>(el, ".igw-error").hidden).toBe(true);
    // Compute waits, saying why.
    expect(compute.disabled).toBe(true);
    expect(blocked.hidden).toBe(false);
    expect(blocked.textContent).toBe("Compute waits: correct steps first");
    // Other controls, the kernel's answers to them and redraws leave it standing.
    change(control<HTMLSelectElement>(el, "baseline"), "white");
    change(query<HTMLInputElement>(el, "input.igw-clip-above"), "90", "input");
    model.set("clip_above_percentile", 90);
    model.set("error", "");
    model.set("steps", 50);
    expect(steps.value).toBe("-5");
    expect(messageOf(steps)?.textContent).toBe("steps: a whole number from 1 to 10,000; got -5");
    expect(compute.disabled).toBe(true);
    // A second refused value says its own words, beside its own box.
    const window = control<HTMLInputElement>(el, "window (px)");
    change(window, "0");
    expect(messageOf(window)?.textContent).toBe("window (px): a whole number from 1 to 64; got 0");
    expect(blocked.textContent).toBe("Compute waits: correct steps and window (px) first");
    change(window, "5");
    expect(model.get("structure")).toBe(5);
    expect(window.hasAttribute("aria-invalid")).toBe(false);
    // A kernel's refusal names the option; beside the box it says the label.
    change(window, "7");
    model.set("structure", 5);
    model.set("error", "structure: expected an odd size, got 7");
    expect(messageOf(window)?.textContent).toBe("window (px): expected an odd size, got 7");
    change(window, "5");
    model.set("error", "");
    // Corrected: accepted, unmarked, Compute ready again.
    change(steps, "12");
    model.set("error", "");
    expect(model.get("steps")).toBe(12);
    expect(steps.value).toBe("12");
    expect(steps.hasAttribute("aria-invalid")).toBe(false);
    expect(messageOf(steps)?.hidden).toBe(true);
    expect(compute.disabled).toBe(false);
    expect(blocked.hidden).toBe(true);
    compute.click();
    expect(sends).toHaveBeenLastCalledWith({ type: "compute" });
  });

  it("offers auto steps only with the rules that take them", () => {
    const { model, el } = mount();
    const auto = control<HTMLInputElement>(el, "auto steps");
    const method = control<HTMLSelectElement>(el, "method");
    const steps = control<HTMLInputElement>(el, "steps");
    auto.checked = true;
    auto.dispatchEvent(new Event("change"));
    expect(model.get("steps")).toBe("auto");
    expect(steps.disabled).toBe(true);
    // While auto is on, only trapezoid can be chosen.
    const offered = [...method.options].filter((o) => !o.disabled).map((o) => o.value);
    expect(offered).toEqual(["trapezoid"]);
    // Off again: the steps box shows the number that will be used.
    auto.checked = false;
    auto.dispatchEvent(new Event("change"));
    expect(model.get("steps")).toBe(50);
    expect(steps.value).toBe("50");
    change(method, "gausslegendre");
    expect(auto.disabled).toBe(true);
    const hint = document.getElementById(
      (auto.getAttribute("aria-describedby") ?? "").split(" ")[0],
    );
    expect(hint?.textContent).toBe("only with trapezoid");
  });

  it("disables runs, saying why, for baselines that are the same every run", () => {
    const { el } = mount();
    const runs = control<HTMLInputElement>(el, "runs");
    expect(runs.disabled).toBe(true);
    const hint = document.getElementById(
      (runs.getAttribute("aria-describedby") ?? "").split(" ")[0],
    );
    expect(hint?.textContent).toBe("no effect: only uniform baselines differ per run");
    change(control<HTMLSelectElement>(el, "baseline"), "uniform");
    expect(runs.disabled).toBe(false);
    expect(hint?.hidden).toBe(true);
  });

  it("dims the panels while computing and says what is coming", () => {
    const { model, el } = mount();
    const note = query<HTMLElement>(el, ".igw-busy-note");
    expect(note.hidden).toBe(true);
    model.set("target", 4);
    model.set("computing", true);
    model.set("progress", [12, 51]);
    const grid = query(el, ".igw-panels");
    expect(grid.classList.contains("igw-busy")).toBe(true);
    expect(grid.getAttribute("aria-busy")).toBe("true");
    expect(note.textContent).toBe(
      `Computing “${isolate(HOSTILE)}” with Integrated gradients (50 steps, black baseline, ` +
        `trapezoid); the panels show “${isolate("tabby cat")}” until it is done.`,
    );
    expect(query(el, ".igw-progress-text").textContent).toBe("12 / 51 points");
    model.set("computing", false);
    expect(grid.classList.contains("igw-busy")).toBe(false);
    expect(note.hidden).toBe(true);
    model.set("stale", true);
    expect(query<HTMLElement>(el, ".igw-stale").hidden).toBe(false);
  });

  it("enlarges a panel with its button or a click, and back", () => {
    const { el, canvases } = mount();
    const figure = query(el, ".igw-panel-explainer");
    const enlarge = query<HTMLButtonElement>(figure, ".igw-enlarge");
    expect(enlarge.getAttribute("aria-label")).toBe("Enlarge Integrated gradients");
    enlarge.click();
    expect(figure.classList.contains("igw-panel-large")).toBe(true);
    expect(enlarge.getAttribute("aria-pressed")).toBe("true");
    expect(enlarge.getAttribute("aria-label")).toBe("Shrink Integrated gradients");
    canvases[2].click();
    expect(figure.classList.contains("igw-panel-large")).toBe(false);
  });

  it("disables computing in the standalone view", () => {
    const model = new LocalModel(makeState());
    const el = document.createElement("div");
    mountView(model, el, { computeEnabled: false });
    expect(query<HTMLFieldSetElement>(el, "fieldset.igw-compute").disabled).toBe(true);
    expect(query<HTMLSelectElement>(el, "select.igw-class").disabled).toBe(true);
    expect(query<HTMLInputElement>(el, "input.igw-clip-above").disabled).toBe(false);
  });

  it("marks every control so that notebook shortcuts leave its keys alone", () => {
    const { el } = mount();
    const focusable = [...el.querySelectorAll<HTMLElement>("input, select, button")];
    expect(focusable.length).toBeGreaterThan(15);
    for (const node of focusable) {
      expect(node.dataset.lmSuppressShortcuts).toBe("true");
    }
  });
});

describe("helpers", () => {
  it("says why a number box's text is refused, in the box's own words", () => {
    expect(wholeNumberProblem("steps", " 64 ", 1, 10_000)).toBe("");
    expect(wholeNumberProblem("steps", "-5", 1, 10_000)).toBe(
      "steps: a whole number from 1 to 10,000; got -5",
    );
    expect(wholeNumberProblem("steps", "1e3", 1, 10_000)).toBe(
      "steps: a whole number from 1 to 10,000; got 1e3",
    );
    expect(wholeNumberProblem("window (px)", "", 1, 64)).toBe(
      "window (px): a whole number from 1 to 64; got nothing",
    );
    expect(wholeNumberProblem("runs", "", 1, 10_000, true)).toBe(
      "runs: a whole number from 1 to 10,000; got text that is not a number",
    );
  });

  it("isolates names from the text around them, stray closers included", () => {
    const reversed = "exe.\u202Eevil";
    expect(isolate(reversed)).toBe(`\u2068${reversed}\u2069`);
    // A stray Pop Directional Isolate closes an extra isolate, not the name's own.
    expect(isolate("a\u2069b")).toBe("\u2068\u2068a\u2069b\u2069");
    expect(isolate("\u2067a\u2069")).toBe("\u2068\u2067a\u2069\u2069");
  });

  it("formats signed values", () => {
    expect(formatSigned(0)).toBe("0");
    expect(formatSigned(0.5)).toBe("+0.500");
    expect(formatSigned(-2.5e-5)).toBe("-2.50e-5");
  });
});
