// @vitest-environment happy-dom
// The view on a page-local model: what it draws, what it sends, and that
// model text stays text. happy-dom has no 2D canvas, so each canvas gets a
// recording context; real drawing is checked in Chromium (tests/test_browser.py).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { formatSigned } from "../src/format";
import { LocalModel } from "../src/local-model";
import { drawPathPlot } from "../src/pathplot";
import { RENDER_DEFAULTS, renderMaps } from "../src/render";
import { mountView, parseSteps, type WidgetState } from "../src/view";

const WIDTH = 5;
const HEIGHT = 4;
const PIXELS = WIDTH * HEIGHT;
const HOSTILE = '<b>bold</b><img src=x onerror="window.__pwned = 1">';

class RecordingContext {
  readonly frames: Uint8ClampedArray[] = [];

  createImageData(width: number, height: number): ImageData {
    return { width, height, data: new Uint8ClampedArray(width * height * 4) } as ImageData;
  }

  putImageData(pixels: ImageData): void {
    this.frames.push(pixels.data.slice());
  }
}

const contexts = new Map<HTMLCanvasElement, RecordingContext>();
const originalGetContext = HTMLCanvasElement.prototype.getContext;

function contextOf(canvas: HTMLCanvasElement): RecordingContext {
  const context = contexts.get(canvas);
  if (context === undefined) {
    throw new Error("canvas has no context");
  }
  return context;
}

function ramp(length: number, scale: number, offset = 0): Float32Array {
  return Float32Array.from({ length }, (_, i) => ((i * 7 + offset) % length) * scale);
}

function makeState(overrides: Partial<WidgetState> = {}): WidgetState {
  const image = Uint8Array.from({ length: PIXELS * 3 }, (_, i) => (i * 37) % 256);
  const view = (values: ArrayBufferView): DataView =>
    new DataView(values.buffer, values.byteOffset, values.byteLength);
  return {
    ...RENDER_DEFAULTS,
    clip_above_percentile: 95,
    steps: 50,
    baseline: "black",
    runs: 1,
    method: "trapezoid",
    target: 1,
    baseline_choices: ["black", "white", "uniform", "blur"],
    method_choices: ["trapezoid", "gausslegendre"],
    classes: [
      [1, "tabby cat", 0.8],
      [4, HOSTILE, 0.15],
    ],
    summary: {
      target: 1,
      label: "tabby cat",
      score: 0.8,
      predicted: 1,
      predicted_label: "tabby cat",
      predicted_score: 0.8,
      delta: 0.004,
      steps: 50,
      method: "trapezoid",
      runs: 1,
      points_used: 51,
      elapsed_s: 0.12,
      display_factor: 1,
    },
    path: {
      alphas: [0, 0.5, 1],
      mean: [0.1, 0.6, 0.8],
      low: [0.1, 0.6, 0.8],
      high: [0.1, 0.6, 0.8],
      baseline_score: 0.1,
      score: 0.8,
    },
    image_size: [HEIGHT, WIDTH],
    display_size: [HEIGHT, WIDTH],
    image_rgb: view(image),
    gradient_positive: view(ramp(PIXELS, 0.01)),
    gradient_negative: view(ramp(PIXELS, 0.02, 3)),
    ig_positive: view(ramp(PIXELS, 1.5, 1)),
    ig_negative: view(ramp(PIXELS, 0.5, 5)),
    computing: false,
    progress: [51, 51],
    stale: false,
    error: "",
    notice: "",
    ...overrides,
  };
}

function floats(value: unknown): Float32Array {
  const view = value as DataView;
  return new Float32Array(view.buffer, view.byteOffset, view.byteLength / 4);
}

function mount(state = makeState()) {
  const model = new LocalModel(state);
  const saves = vi.spyOn(model, "save_changes");
  const sends = vi.spyOn(model, "send");
  const el = document.createElement("div");
  document.body.append(el);
  const dispose = mountView(model, el, { computeEnabled: true });
  const canvases = [...el.querySelectorAll("canvas")];
  return { model, saves, sends, el, dispose, canvases };
}

function query<T extends Element>(el: HTMLElement, selector: string): T {
  const found = el.querySelector<T>(selector);
  if (found === null) {
    throw new Error(`no ${selector}`);
  }
  return found;
}

beforeEach(() => {
  contexts.clear();
  HTMLCanvasElement.prototype.getContext = function (this: HTMLCanvasElement) {
    const context = contexts.get(this) ?? new RecordingContext();
    contexts.set(this, context);
    return context;
  } as unknown as typeof HTMLCanvasElement.prototype.getContext;
});

afterEach(() => {
  HTMLCanvasElement.prototype.getContext = originalGetContext;
  document.body.replaceChildren();
});

describe("mountView", () => {
  it("draws the input and both attribution panels as the renderer does", () => {
    const state = makeState();
    const { canvases } = mount(state);
    expect(canvases).toHaveLength(3);
    for (const canvas of canvases) {
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
    const expectedGradient = renderMaps(
      image,
      floats(state.gradient_positive),
      floats(state.gradient_negative),
      WIDTH,
      HEIGHT,
      options,
    );
    const expectedIg = renderMaps(
      image,
      floats(state.ig_positive),
      floats(state.ig_negative),
      WIDTH,
      HEIGHT,
      options,
    );
    expect(contextOf(canvases[1]).frames[0]).toEqual(expectedGradient);
    expect(contextOf(canvases[2]).frames[0]).toEqual(expectedIg);
    // Overlaid attributions change some pixels of the plain image.
    expect(contextOf(canvases[2]).frames[0]).not.toEqual(input);
  });

  it("redraws on a display-option change and only syncs the trait", async () => {
    const { model, saves, sends, el, canvases } = mount();
    const ig = contextOf(canvases[2]);
    const before = ig.frames[0];
    const slider = query<HTMLInputElement>(el, "input.igw-clip-below");
    slider.value = "60";
    slider.dispatchEvent(new Event("input"));
    await Promise.resolve();
    expect(model.get("clip_below_percentile")).toBe(60);
    expect(ig.frames).toHaveLength(2);
    expect(ig.frames[1]).not.toEqual(before);
    expect(saves).not.toHaveBeenCalled();
    slider.dispatchEvent(new Event("change"));
    expect(saves).toHaveBeenCalledTimes(1);
    expect(sends).not.toHaveBeenCalled();
    // Every redraw is a complete picture: the input panel is drawn again, unchanged.
    const input = contextOf(canvases[0]).frames;
    expect(input).toHaveLength(2);
    expect(input[1]).toEqual(input[0]);
  });

  it("keeps clip below under clip above", async () => {
    const { model, el } = mount();
    const slider = query<HTMLInputElement>(el, "input.igw-clip-below");
    slider.value = "99.5";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("clip_below_percentile")).toBe(94.9);
    expect(slider.value).toBe("94.9");
  });

  it("coalesces several changes into one redraw", async () => {
    const { model, canvases } = mount();
    model.set("polarity", "both");
    model.set("overlay", false);
    model.set("outlines", true);
    await Promise.resolve();
    const frames = contextOf(canvases[2]).frames;
    expect(frames).toHaveLength(2);
    const state = makeState();
    const expected = renderMaps(
      new Uint8Array((state.image_rgb as DataView).buffer),
      floats(state.ig_positive),
      floats(state.ig_negative),
      WIDTH,
      HEIGHT,
      {
        ...RENDER_DEFAULTS,
        clip_above_percentile: 95,
        polarity: "both",
        overlay: false,
        outlines: true,
      },
    );
    expect(frames[1]).toEqual(expected);
  });

  it("inserts class names and messages as text", () => {
    const { el, model } = mount(
      makeState({
        summary: { ...makeState().summary, predicted_label: HOSTILE },
        error: `model: ${HOSTILE}`,
      }),
    );
    const options = [...query<HTMLSelectElement>(el, "select.igw-class").options];
    expect(options.map((option) => option.text)).toEqual([
      "tabby cat (0.800)",
      `${HOSTILE} (0.150)`,
    ]);
    expect(query(el, ".igw-predicted-name").textContent).toBe(HOSTILE);
    expect(query(el, ".igw-error").textContent).toBe(`model: ${HOSTILE}`);
    model.set("notice", HOSTILE);
    expect(query(el, ".igw-notice").textContent).toBe(HOSTILE);
    expect(el.querySelector("b, img")).toBeNull();
  });

  it("sends compute and cancel as messages and a class choice as a trait", () => {
    const { model, saves, sends, el } = mount();
    const classes = query<HTMLSelectElement>(el, "select.igw-class");
    classes.value = "4";
    classes.dispatchEvent(new Event("change"));
    expect(model.get("target")).toBe(4);
    expect(saves).toHaveBeenCalledTimes(1);
    expect(sends).not.toHaveBeenCalled();
    const steps = query<HTMLInputElement>(el, "input.igw-steps");
    steps.value = " 120 ";
    steps.dispatchEvent(new Event("change"));
    expect(model.get("steps")).toBe(120);
    steps.value = "auto";
    steps.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(model.get("steps")).toBe("auto");
    expect(saves).toHaveBeenCalledTimes(3);
    query<HTMLButtonElement>(el, ".igw-compute-button").click();
    expect(sends).toHaveBeenLastCalledWith({ type: "compute" });
    model.set("computing", true);
    const cancel = query<HTMLButtonElement>(el, ".igw-cancel");
    expect(cancel.hidden).toBe(false);
    expect(classes.disabled).toBe(true);
    cancel.click();
    expect(sends).toHaveBeenLastCalledWith({ type: "cancel" });
  });

  it("shows progress while computing and the stale mark after an option change", () => {
    const { model, el } = mount();
    const bar = query<HTMLProgressElement>(el, "progress");
    expect(bar.hidden).toBe(true);
    model.set("computing", true);
    model.set("progress", [12, 51]);
    expect(bar.hidden).toBe(false);
    expect([bar.value, bar.max]).toEqual([12, 51]);
    expect(query(el, ".igw-progress-text").textContent).toBe("12 / 51");
    model.set("computing", false);
    model.set("stale", true);
    expect(query<HTMLElement>(el, ".igw-stale").hidden).toBe(false);
    expect(query(el, ".igw-compute-button").classList.contains("igw-attention")).toBe(true);
  });

  it("reads gradient and IG values under the pointer", () => {
    const state = makeState();
    const { el, canvases } = mount(state);
    canvases[2].getBoundingClientRect = () =>
      ({ left: 0, top: 0, width: 50, height: 40 }) as DOMRect;
    canvases[2].dispatchEvent(new MouseEvent("pointermove", { clientX: 31, clientY: 25 }));
    const i = 2 * WIDTH + 3;
    const gradient = floats(state.gradient_positive)[i] - floats(state.gradient_negative)[i];
    const ig = floats(state.ig_positive)[i] - floats(state.ig_negative)[i];
    expect(query(el, ".igw-readout").textContent).toBe(
      `x 3, y 2 · channel mean: gradient ${formatSigned(gradient)} · IG ${formatSigned(ig)}`,
    );
  });

  it("disables computing in the standalone view", () => {
    const model = new LocalModel(makeState());
    const el = document.createElement("div");
    mountView(model, el, { computeEnabled: false });
    expect(query<HTMLFieldSetElement>(el, "fieldset.igw-compute").disabled).toBe(true);
    expect(query<HTMLSelectElement>(el, "select.igw-class").disabled).toBe(true);
    expect(query<HTMLInputElement>(el, "input.igw-clip-above").disabled).toBe(false);
  });

  it("removes every model listener it added on dispose", async () => {
    const model = new LocalModel(makeState());
    const added: [string, unknown][] = [];
    const removed: [string, unknown][] = [];
    const on = model.on.bind(model);
    const off = model.off.bind(model);
    model.on = (event: string, handler: () => void) => {
      added.push([event, handler]);
      on(event, handler);
    };
    model.off = (event?: string | null, handler?: (() => void) | null) => {
      removed.push([event ?? "", handler]);
      off(event, handler);
    };
    const el = document.createElement("div");
    const dispose = mountView(model, el, { computeEnabled: true });
    expect(added.length).toBeGreaterThan(10);
    dispose();
    expect(removed).toEqual(added);
    const canvas = el.querySelectorAll("canvas")[2];
    const frames = contextOf(canvas).frames.length;
    model.set("overlay", false);
    await Promise.resolve();
    expect(contextOf(canvas).frames).toHaveLength(frames);
  });
});

describe("helpers", () => {
  it("parses the steps box", () => {
    expect(parseSteps(" 64 ")).toBe(64);
    expect(parseSteps("auto")).toBe("auto");
    expect(parseSteps("1e3")).toBe("1e3");
  });

  it("formats signed values", () => {
    expect(formatSigned(0)).toBe("0");
    expect(formatSigned(0.5)).toBe("+0.500");
    expect(formatSigned(-2.5e-5)).toBe("-2.50e-5");
  });

  it("plots the path with text labels and a band for several runs", () => {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    drawPathPlot(svg, {
      alphas: [0, 0.5, 1],
      mean: [0, 2, 4],
      low: [0, 1, 4],
      high: [0, 3, 4],
      baseline_score: 0,
      score: 4,
    });
    const line = svg.querySelector("polyline");
    expect(line?.getAttribute("points")).toBe("44.0,124.0 128.0,66.0 212.0,8.0");
    expect(svg.querySelector("polygon")).not.toBeNull();
    const labels = [...svg.querySelectorAll("text")].map((t) => t.textContent);
    expect(labels).toContain("4.00");
    expect(labels).toContain("0");
  });
});
