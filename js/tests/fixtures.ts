// Shared by the view tests: a page-local model with a small widget state,
// and canvases that record what is drawn (happy-dom has no 2D canvas; real
// drawing is checked in Chromium, tests/test_browser.py).
import { vi } from "vitest";
import { LocalModel } from "../src/local-model";
import { RENDER_DEFAULTS, type RenderOptions } from "../src/render";
import { traitOf, type WidgetState } from "../src/state";

export const WIDTH = 5;
export const HEIGHT = 4;
export const PIXELS = WIDTH * HEIGHT;
export const HOSTILE = '<b>bold</b><img src=x onerror="window.__pwned = 1">';

export class RecordingContext {
  readonly frames: Uint8ClampedArray[] = [];

  createImageData(width: number, height: number): ImageData {
    return { width, height, data: new Uint8ClampedArray(width * height * 4) } as ImageData;
  }

  putImageData(pixels: ImageData): void {
    this.frames.push(pixels.data.slice());
  }

  clearRect(): void {}
}

const contexts = new Map<HTMLCanvasElement, RecordingContext>();
const originalGetContext = HTMLCanvasElement.prototype.getContext;

/** Give every canvas a recording context (call in beforeEach). */
export function recordCanvases(): void {
  contexts.clear();
  HTMLCanvasElement.prototype.getContext = function (this: HTMLCanvasElement) {
    const context = contexts.get(this) ?? new RecordingContext();
    contexts.set(this, context);
    return context;
  } as unknown as typeof HTMLCanvasElement.prototype.getContext;
}

export function restoreCanvases(): void {
  HTMLCanvasElement.prototype.getContext = originalGetContext;
}

export function contextOf(canvas: HTMLCanvasElement): RecordingContext {
  const context = contexts.get(canvas);
  if (context === undefined) {
    throw new Error("canvas has no context");
  }
  return context;
}

export function ramp(length: number, scale: number, offset = 0): Float32Array {
  return Float32Array.from({ length }, (_, i) => ((i * 7 + offset) % length) * scale);
}

export function view(values: ArrayBufferView): DataView {
  return new DataView(values.buffer, values.byteOffset, values.byteLength);
}

/** Render options as the traits that hold them. */
export function asTraits(options: Partial<RenderOptions>): Partial<WidgetState> {
  return Object.fromEntries(
    Object.entries(options).map(([option, value]) => [
      traitOf(option as keyof RenderOptions),
      value,
    ]),
  );
}

export function makeState(overrides: Partial<WidgetState> = {}): WidgetState {
  const image = Uint8Array.from({ length: PIXELS * 3 }, (_, i) => (i * 37) % 256);
  return {
    ...asTraits(RENDER_DEFAULTS),
    clip_above_percentile: 95,
    steps: 50,
    baseline: "black",
    runs: 1,
    method: "trapezoid",
    target: 1,
    against: null,
    baseline_choices: ["black", "white", "uniform", "blur"],
    method_choices: ["trapezoid", "gausslegendre"],
    explainer: "integrated_gradients",
    compare: "",
    explainer_choices: [
      ["integrated_gradients", "Integrated gradients"],
      ["smoothgrad", "SmoothGrad"],
      ["xrai", "XRAI"],
    ],
    classes: [
      [1, "tabby cat", 0.8],
      [4, HOSTILE, 0.15],
    ],
    summary: {
      target: 1,
      label: "tabby cat",
      against: null,
      against_label: "",
      score: 0.8,
      predicted: 1,
      predicted_label: "tabby cat",
      predicted_score: 0.8,
      explainer: "integrated_gradients",
      explainer_title: "Integrated gradients",
      compare: "",
      compare_title: "",
      delta: 0.004,
      gradients: true,
      total: 0.7,
      falling_note: "",
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
    explainer_positive: view(ramp(PIXELS, 1.5, 1)),
    explainer_negative: view(ramp(PIXELS, 0.5, 5)),
    compare_positive: view(new Float32Array(0)),
    compare_negative: view(new Float32Array(0)),
    curves: [],
    stability_shown: null,
    stability_spread: view(new Float32Array(0)),
    sanity: { explainer_title: "", target: 0, label: "", size: [0, 0], steps: [] },
    sanity_rgb: view(new Uint8Array(0)),
    sanity_maps: view(new Float32Array(0)),
    computing: false,
    progress: [51, 51],
    progress_stage: "",
    stale: false,
    error: "",
    notice: "",
    ...overrides,
  } as WidgetState;
}

export function floats(value: unknown): Float32Array {
  const data = value as DataView;
  return new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
}

/** A LocalModel that records every listener added and removed, and every sync. */
export function spiedModel(state = makeState()) {
  const model = new LocalModel(state);
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
  const saves = vi.spyOn(model, "save_changes");
  const sends = vi.spyOn(model, "send");
  const sets = vi.spyOn(model, "set");
  return { model, added, removed, saves, sends, sets };
}

export function query<T extends Element>(el: ParentNode, selector: string): T {
  const found = el.querySelector<T>(selector);
  if (found === null) {
    throw new Error(`no ${selector}`);
  }
  return found;
}

/** The control labelled `name` (its label's own text), as a user or screen reader finds it. */
export function control<T extends HTMLElement>(el: ParentNode, name: string): T {
  for (const label of el.querySelectorAll("label")) {
    if (label.querySelector(".igw-field-name")?.textContent === name) {
      const found = label.querySelector<T>("input, select");
      if (found !== null) return found;
    }
  }
  throw new Error(`no control labelled ${name}`);
}
