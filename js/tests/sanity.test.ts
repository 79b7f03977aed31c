// @vitest-environment happy-dom
// The sanity check in the view: the button's message, the strip drawn from the
// raw maps with the display options, the similarities under each picture, and
// model text kept as text.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isolate } from "../src/format";
import { RENDER_DEFAULTS, renderMaps } from "../src/render";
import { mountView } from "../src/view";
import { similarityText } from "../src/view/sanity";
import {
  contextOf,
  HEIGHT,
  HOSTILE,
  makeState,
  PIXELS,
  query,
  ramp,
  recordCanvases,
  restoreCanvases,
  spiedModel,
  view,
  WIDTH,
} from "./fixtures";

const STEPS = [
  { label: "original", spearman_abs: 1, spearman: 1, ssim: 1 },
  { label: HOSTILE, spearman_abs: 0.123, spearman: -0.5, ssim: null },
];
// Per step: the positive map, then the negative one.
const MAPS = Float32Array.from([
  ...ramp(PIXELS, 1.5, 1),
  ...ramp(PIXELS, 0.5, 5),
  ...ramp(PIXELS, 0.7, 2),
  ...ramp(PIXELS, 0.1, 3),
]);
const RGB = Uint8Array.from({ length: PIXELS * 3 }, (_, i) => (i * 11) % 256);

function checked() {
  return makeState({
    sanity: {
      explainer_title: "Integrated gradients",
      target: 4,
      label: HOSTILE,
      size: [HEIGHT, WIDTH],
      steps: STEPS,
    },
    sanity_rgb: view(RGB),
    sanity_maps: view(MAPS),
  });
}

function mount(state = makeState()) {
  const spied = spiedModel(state);
  const el = document.createElement("div");
  document.body.append(el);
  mountView(spied.model, el, { computeEnabled: true });
  return { ...spied, el };
}

beforeEach(recordCanvases);

afterEach(() => {
  restoreCanvases();
  document.body.replaceChildren();
});

describe("sanity check", () => {
  it("is hidden until one is shown; the button asks the kernel for one", () => {
    const { el, sends, model } = mount();
    expect(query<HTMLElement>(el, ".igw-sanity").hidden).toBe(true);
    const button = query<HTMLButtonElement>(el, ".igw-sanity-button");
    button.click();
    expect(sends).toHaveBeenLastCalledWith({ type: "sanity" });
    model.set("computing", true);
    expect(button.disabled).toBe(true);
    model.set("computing", false);
    expect(button.disabled).toBe(false);
  });

  it("draws each step from its maps with the display options, similarities under each", () => {
    const { el, model } = mount(checked());
    const figures = [...el.querySelectorAll<HTMLElement>(".igw-sanity-step")];
    expect(query<HTMLElement>(el, ".igw-sanity").hidden).toBe(false);
    expect(figures).toHaveLength(2);
    const titles = figures.map((f) => query(f, ".igw-panel-title").textContent);
    expect(titles).toEqual(["original", HOSTILE]);
    const captions = figures.map((f) => query(f, ".igw-description").textContent);
    expect(captions).toEqual([
      "Spearman 1.00 (signed 1.00), SSIM 1.00",
      "Spearman 0.12 (signed -0.50), SSIM n/a",
    ]);
    expect(similarityText(STEPS[1])).toBe(captions[1]);
    // The fixture's display options.
    const options = { ...RENDER_DEFAULTS, clip_above_percentile: 95 };
    figures.forEach((figure, index) => {
      const canvas = query<HTMLCanvasElement>(figure, "canvas");
      const start = 2 * index * PIXELS;
      const want = renderMaps(
        RGB,
        MAPS.subarray(start, start + PIXELS),
        MAPS.subarray(start + PIXELS, start + 2 * PIXELS),
        WIDTH,
        HEIGHT,
        options,
      );
      const frames = contextOf(canvas).frames;
      expect(frames.at(-1)).toEqual(want);
    });
    // A display option redraws the strip in the browser.
    const before = figures.map((f) => contextOf(query(f, "canvas")).frames.length);
    model.set("polarity", "both");
    const after = figures.map((f) => contextOf(query(f, "canvas")).frames.length);
    expect(after).toEqual(before.map((n) => n + 1));
    // Model text: shown as text, isolated, never HTML.
    expect(query(el, ".igw-sanity-note").textContent).toContain(`“${isolate(HOSTILE)}”`);
    expect(el.querySelectorAll(".igw-sanity b, .igw-sanity img")).toHaveLength(0);
  });

  it("reloads when a new check arrives and hides when a new image clears it", async () => {
    const { el, model } = mount(checked());
    model.set("sanity", { ...model.get("sanity"), steps: [STEPS[0]] });
    await Promise.resolve();
    expect(el.querySelectorAll(".igw-sanity-step")).toHaveLength(1);
    model.set("sanity", { ...model.get("sanity"), steps: [] });
    await Promise.resolve();
    expect(el.querySelectorAll(".igw-sanity-step")).toHaveLength(0);
    expect(query<HTMLElement>(el, ".igw-sanity").hidden).toBe(true);
  });

  it("says a sanity check runs, and leaves the panels undimmed", () => {
    const { el, model } = mount();
    const grid = query<HTMLElement>(el, ".igw-panels");
    model.set("computing", true);
    model.set("progress_stage", "Sanity check of Integrated gradients");
    expect(query(el, ".igw-busy-note").textContent).toBe(
      `Sanity check of Integrated gradients: its map of “${isolate("tabby cat")}” as the ` +
        "layers of a copy of the model are randomised; the panels stay as they are.",
    );
    expect(grid.classList.contains("igw-busy")).toBe(false);
    expect(grid.getAttribute("aria-busy")).toBe("false");
    // The next computation's stage: the usual note, the panels dimmed.
    model.set("progress_stage", "");
    expect(query(el, ".igw-busy-note").textContent).toMatch(/^Computing /);
    expect(grid.classList.contains("igw-busy")).toBe(true);
  });
});
