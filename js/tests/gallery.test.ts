// @vitest-environment happy-dom
// The gallery on a page-local model: what it asks the kernel for, how it
// draws what arrives, and that table text stays text. Real scrolling and
// drawing are checked in Chromium (tests/test_gallery_browser.py).

import type { Host } from "@anywidget/types";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { isolate } from "../src/format";
import {
  type Caption,
  formatPercentage,
  GALLERY_SCALE_NOTE,
  type GalleryState,
  indicesOf,
  mountGallery,
  ThumbnailCache,
  visibleRows,
} from "../src/gallery";
import { LocalModel } from "../src/local-model";
import { colourKey, RENDER_DEFAULTS, type RenderOptions, renderMaps } from "../src/render";
import { mountView } from "../src/view";
import { showKey } from "../src/view/key";
import { contextOf, makeState, recordCanvases, restoreCanvases } from "./fixtures";

const SIDE = 4;
const PIXELS = SIDE * SIDE;
const HOSTILE = '<img src=x onerror="window.__pwned = 1">';

function state(count: number): GalleryState {
  const order = Int32Array.from({ length: count }, (_, i) => count - 1 - i);
  const { style, ...display } = RENDER_DEFAULTS;
  return {
    ...display,
    picture_style: style,
    columns: [
      ["source", "text"],
      ["label", "class"],
      ["delta", "number"],
      ["correct", "boolean"],
    ],
    sort_by: "delta",
    descending: true,
    filters: [],
    order: new DataView(order.buffer),
    total: count,
    class_names: ["circle", HOSTILE],
    thumbnail_size: [SIDE, SIDE],
    selected: -1,
    detail: null,
    detail_a: null,
    compared_names: [],
    live: false,
    error: "",
    clusters: [],
    cluster_rgb: new DataView(new ArrayBuffer(0)),
    cluster_maps: new DataView(new ArrayBuffer(0)),
  };
}

function caption(index: number): Caption {
  return {
    source: `array[${index}]`,
    label: 1,
    predicted: 0,
    target: 0,
    score: 0.9,
    delta: 0.0123,
    correct: false,
    mask_share: 0.25,
  };
}

function thumbnails(indices: number[]): DataView[] {
  const rgb = Uint8Array.from({ length: indices.length * PIXELS * 3 }, (_, i) => (i * 13) % 256);
  const maps = Float32Array.from({ length: indices.length * 2 * PIXELS }, (_, i) => (i % 7) * 0.5);
  return [new DataView(rgb.buffer), new DataView(maps.buffer)];
}

const frame = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 40));

beforeEach(recordCanvases);

afterEach(() => {
  restoreCanvases();
  document.body.replaceChildren();
});

describe("helpers", () => {
  it("keeps the most recently used thumbnails", () => {
    const cache = new ThumbnailCache<string>(2);
    cache.set(1, "a");
    cache.set(2, "b");
    expect(cache.get(1)).toBe("a");
    cache.set(3, "c");
    expect([cache.has(1), cache.has(2), cache.has(3)]).toEqual([true, false, true]);
  });

  it("lays out the rows in view and one around them", () => {
    expect(visibleRows(0, 300, 100, 50, 1)).toEqual([0, 4]);
    expect(visibleRows(1000, 300, 100, 50, 1)).toEqual([9, 14]);
    expect(visibleRows(4900, 300, 100, 50, 1)).toEqual([48, 49]);
    expect(visibleRows(0, 300, 100, 0, 1)).toEqual([0, -1]);
  });

  it("reads the order from unaligned bytes", () => {
    const bytes = new Uint8Array(9);
    new DataView(bytes.buffer).setInt32(1, 7, true);
    new DataView(bytes.buffer).setInt32(5, 3, true);
    expect([...indicesOf(new DataView(bytes.buffer, 1, 8))]).toEqual([7, 3]);
    expect(formatPercentage(0.01234)).toBe("1.23%");
    expect(formatPercentage(null)).toBe("–");
  });
});

describe("mountGallery", () => {
  it("asks for the thumbnails in view and draws them with the renderer", async () => {
    const model = new LocalModel(state(10_000));
    const sends = vi.spyOn(model, "send");
    const subscriptions = vi.spyOn(model, "on");
    const el = document.createElement("div");
    document.body.append(el);
    const dispose = mountGallery(model, el, null);
    await frame();
    const requested = sends.mock.calls.flatMap(
      (call) => (call as unknown[] as [{ indices: number[] }])[0].indices,
    );
    // Only a few of the 10,000, starting with the first in the order.
    expect(requested[0]).toBe(9999);
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.length).toBeLessThan(100);
    expect(el.querySelector(".igg-count")?.textContent).toBe("10000 of 10000 images");

    const first = requested.slice(0, 2);
    const receive = subscriptions.mock.calls.find(([event]) => event === "msg:custom")?.[1];
    receive?.(
      { type: "thumbnails", indices: first, captions: first.map(caption) },
      thumbnails(first),
    );
    await frame();
    const cell = el.querySelector<HTMLElement>(".igg-cell[data-image='9999']");
    expect(cell).not.toBeNull();
    const [input, picture] = [...(cell as HTMLElement).querySelectorAll("canvas")];
    const [rgbView, mapsView] = thumbnails(first);
    const rgb = new Uint8Array(rgbView.buffer).slice(0, PIXELS * 3);
    const maps = new Float32Array(mapsView.buffer);
    const expected = renderMaps(
      rgb,
      maps.slice(0, PIXELS),
      maps.slice(PIXELS, 2 * PIXELS),
      SIDE,
      SIDE,
      RENDER_DEFAULTS,
    );
    expect(contextOf(picture).frames.at(-1)).toEqual(expected);
    expect(contextOf(input).frames).toHaveLength(1);
    // Class names and sources are text, never HTML.
    expect(cell?.querySelector(".igg-title")?.textContent).toBe(
      `#9999 · ${isolate(HOSTILE)} → ${isolate("circle")}`,
    );
    expect(cell?.querySelector("img")).toBeNull();
    expect(cell?.classList.contains("igg-wrong")).toBe(true);
    expect(cell?.querySelector(".igg-details")?.textContent).toBe("Δ 1.23% · mask 25%");

    // A display option redraws the thumbnails here, without asking the kernel.
    sends.mockClear();
    model.set("polarity", "negative");
    await frame();
    const redrawn = renderMaps(
      rgb,
      maps.slice(0, PIXELS),
      maps.slice(PIXELS, 2 * PIXELS),
      SIDE,
      SIDE,
      {
        ...RENDER_DEFAULTS,
        polarity: "negative",
      },
    );
    expect(contextOf(picture).frames.at(-1)).toEqual(redrawn);
    expect(sends).not.toHaveBeenCalled();

    (cell as HTMLElement).click();
    expect(sends).toHaveBeenCalledWith({ type: "open", index: 9999 });
    // The source, from a file name, is isolated from the words around it (U+202E in it
    // would otherwise reverse them).
    expect(cell?.title).toBe(isolate("array[9999]"));
    model.set("selected", 9999);
    model.set("detail", "IPY_MODEL_x");
    await frame();
    expect(el.querySelector(".igg-detail-title")?.textContent).toBe(
      `Image #9999 · ${isolate("array[9999]")} · stored`,
    );
    dispose();
  });

  it("shows a new order's image at a place, not the picture that was there", async () => {
    const model = new LocalModel(state(10));
    const subscriptions = vi.spyOn(model, "on");
    const el = document.createElement("div");
    document.body.append(el);
    const dispose = mountGallery(model, el, null);
    await frame();
    const receive = subscriptions.mock.calls.find(([event]) => event === "msg:custom")?.[1];
    receive?.({ type: "thumbnails", indices: [9], captions: [caption(9)] }, thumbnails([9]));
    await frame();
    const first = (): HTMLElement | null => el.querySelector(".igg-cell:not([hidden])");
    expect(first()?.dataset.image).toBe("9");
    expect(first()?.querySelector(".igg-details")?.textContent).toBe("Δ 1.23% · mask 25%");
    // Sorted the other way: image 0 comes first, its thumbnail not here yet.
    const ascending = Int32Array.from({ length: 10 }, (_, i) => i);
    model.set("order", new DataView(ascending.buffer));
    await frame();
    expect(first()?.dataset.image).toBe("0");
    expect(first()?.querySelector(".igg-title")?.textContent).toBe("#0");
    expect(first()?.querySelector(".igg-details")?.textContent).toBe("loading…");
    dispose();
  });

  it("shows each cluster's mean map, and a click filters the grid to its members", async () => {
    const [rgbView, mapsView] = thumbnails([0, 1]);
    const initial: GalleryState = {
      ...state(20),
      columns: [...state(20).columns, ["cluster", "integer"]],
      clusters: [
        [0, 1, 12],
        [1, 0, 8],
      ],
      cluster_rgb: rgbView,
      cluster_maps: mapsView,
    };
    const model = new LocalModel(initial);
    const sends = vi.spyOn(model, "send");
    const el = document.createElement("div");
    document.body.append(el);
    mountGallery(model, el, null);
    const cells = [...el.querySelectorAll<HTMLElement>(".igg-clusters .igg-cell")];
    expect(cells.map((cell) => cell.querySelector(".igg-title")?.textContent)).toEqual([
      `Cluster 0 · ${isolate(HOSTILE)}`,
      `Cluster 1 · ${isolate("circle")}`,
    ]);
    expect(cells[0].querySelector("img")).toBeNull();
    expect(cells[1].querySelector(".igg-details")?.textContent).toBe("8 images · mean map");
    // The second cluster's mean map, drawn by the renderer as a grid thumbnail is.
    const rgb = new Uint8Array(rgbView.buffer);
    const maps = new Float32Array(mapsView.buffer);
    const picture = cells[1].querySelectorAll("canvas")[1];
    expect(contextOf(picture).frames.at(-1)).toEqual(
      renderMaps(
        rgb.slice(PIXELS * 3, 2 * PIXELS * 3),
        maps.slice(2 * PIXELS, 3 * PIXELS),
        maps.slice(3 * PIXELS, 4 * PIXELS),
        SIDE,
        SIDE,
        RENDER_DEFAULTS,
      ),
    );
    cells[1].click();
    expect(sends).toHaveBeenLastCalledWith({
      type: "view",
      sort_by: "delta",
      descending: true,
      filters: [["cluster", "==", 1]],
    });
    // The kernel answers; the chosen cluster is marked, and choosing it again shows all.
    model.set("filters", [["cluster", "==", 1]]);
    model.set("order", new DataView(new ArrayBuffer(8)));
    expect(cells[1].classList.contains("igg-selected")).toBe(true);
    expect(cells[0].classList.contains("igg-selected")).toBe(false);
    cells[1].click();
    expect(sends).toHaveBeenLastCalledWith(expect.objectContaining({ filters: [] }));
    // Without clusters there is no strip.
    const plain = document.createElement("div");
    mountGallery(new LocalModel(state(20)), plain, null);
    expect(plain.querySelector<HTMLElement>(".igg-clusters")?.hidden).toBe(true);
  });

  it("shows a comparison's drift in captions and its two stored views side by side", async () => {
    const model = new LocalModel<GalleryState>({
      ...state(3),
      compared_names: ["before", HOSTILE],
    });
    const subscriptions = vi.spyOn(model, "on");
    const rendered: string[] = [];
    const host = {
      getWidget: async (reference: string) => ({
        render: async ({ el }: { el: HTMLElement }) => {
          rendered.push(reference);
          el.textContent = `view ${reference}`;
        },
      }),
    } as unknown as Host;
    const el = document.createElement("div");
    document.body.append(el);
    const dispose = mountGallery(model, el, host);
    await frame();
    const receive = subscriptions.mock.calls.find(([event]) => event === "msg:custom")?.[1];
    receive?.(
      {
        type: "thumbnails",
        indices: [2],
        captions: [{ ...caption(2), rank_correlation: 0.4251, top_iou: 0.3125 }],
      },
      thumbnails([2]),
    );
    await frame();
    const cell = el.querySelector<HTMLElement>(".igg-cell[data-image='2']");
    expect(cell?.querySelector(".igg-details")?.textContent).toBe(
      "Δ 1.23% · mask 25% · ρ 0.43 · top IoU 31.3%",
    );
    model.set("selected", 2);
    model.set("detail_a", "IPY_MODEL_a");
    model.set("detail", "IPY_MODEL_b");
    await frame();
    await frame();
    const sides = [...el.querySelectorAll(".igg-detail-pair > .igg-detail-side")];
    expect(sides.map((side) => side.textContent)).toEqual([
      "beforeview IPY_MODEL_a",
      `${HOSTILE}view IPY_MODEL_b`,
    ]);
    // A store's name is text, never HTML.
    expect(el.querySelector(".igg-detail img")).toBeNull();
    expect(rendered).toEqual(["IPY_MODEL_a", "IPY_MODEL_b"]);
    dispose();
  });

  it("sends sorting and filtering to the kernel", async () => {
    const model = new LocalModel(state(20));
    const sends = vi.spyOn(model, "send");
    const el = document.createElement("div");
    document.body.append(el);
    mountGallery(model, el, null);
    sends.mockClear();
    const toggle = el.querySelector<HTMLInputElement>(
      "input.igg-misclassified",
    ) as HTMLInputElement;
    toggle.checked = true;
    toggle.dispatchEvent(new Event("change"));
    expect(sends).toHaveBeenLastCalledWith({
      type: "view",
      sort_by: "delta",
      descending: true,
      filters: [["correct", "==", false]],
    });
    const column = el.querySelector<HTMLSelectElement>(
      "select.igg-filter-column",
    ) as HTMLSelectElement;
    column.value = "delta";
    column.dispatchEvent(new Event("change"));
    const value = el.querySelector<HTMLInputElement>("input.igg-filter-value") as HTMLInputElement;
    value.value = "0.05";
    (el.querySelector("button.igg-add-filter") as HTMLButtonElement).click();
    expect(sends).toHaveBeenLastCalledWith({
      type: "view",
      sort_by: "delta",
      descending: true,
      // Built on the change the kernel has not answered yet.
      filters: [
        ["correct", "==", false],
        ["delta", "<", 0.05],
      ],
    });
    (el.querySelector("button.igg-direction") as HTMLButtonElement).click();
    expect(sends).toHaveBeenLastCalledWith(expect.objectContaining({ descending: false }));
  });

  it("keeps a filter's typed value until the kernel takes it, marked when refused", () => {
    const model = new LocalModel(state(20));
    const el = document.createElement("div");
    document.body.append(el);
    mountGallery(model, el, null);
    const column = el.querySelector("select.igg-filter-column") as HTMLSelectElement;
    column.value = "delta";
    column.dispatchEvent(new Event("change"));
    const value = el.querySelector("input.igg-filter-value") as HTMLInputElement;
    const add = el.querySelector("button.igg-add-filter") as HTMLButtonElement;
    value.value = "0,05";
    add.click();
    expect(value.value).toBe("0,05");
    model.set("error", "filters (delta): expected a number, got '0,05'");
    expect(value.value).toBe("0,05");
    expect(value.getAttribute("aria-invalid")).toBe("true");
    // The same refusal again: the kernel clears its error first, so that it is heard.
    value.dispatchEvent(new Event("input"));
    expect(value.hasAttribute("aria-invalid")).toBe(false);
    add.click();
    model.set("error", "");
    model.set("error", "filters (delta): expected a number, got '0,05'");
    expect(value.getAttribute("aria-invalid")).toBe("true");
    const sends = vi.spyOn(model, "send");
    value.value = "0.05";
    value.dispatchEvent(new Event("input"));
    expect(value.hasAttribute("aria-invalid")).toBe(false);
    add.click();
    // Built on the view the kernel has, not on the refused one.
    expect(sends).toHaveBeenLastCalledWith(
      expect.objectContaining({ filters: [["delta", "<", 0.05]] }),
    );
    model.set("error", "");
    model.set("filters", [["delta", "<", 0.05]]);
    expect(value.value).toBe("");
    expect(value.hasAttribute("aria-invalid")).toBe(false);
  });

  it("is used by keyboard: arrows, Home and End move, Enter opens, Escape closes", async () => {
    const model = new LocalModel(state(20));
    const sends = vi.spyOn(model, "send");
    const el = document.createElement("div");
    document.body.append(el);
    const dispose = mountGallery(model, el, null);
    await frame();
    const grid = el.querySelector<HTMLElement>(".igg-scroller") as HTMLElement;
    const press = (key: string): KeyboardEvent => {
      const event = new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true });
      (document.activeElement ?? grid).dispatchEvent(event);
      return event;
    };
    const focused = (): string | undefined => (document.activeElement as HTMLElement).dataset.image;
    grid.focus();
    // The order is 19, 18, ..., 0; one column here (happy-dom lays out nothing).
    expect(press("ArrowDown").defaultPrevented).toBe(true);
    expect(focused()).toBe("18");
    press("ArrowRight");
    expect(focused()).toBe("17");
    press("ArrowUp");
    press("ArrowLeft");
    expect(focused()).toBe("19");
    press("End");
    expect(focused()).toBe("0");
    press("Home");
    press("ArrowDown");
    expect(press("Enter").defaultPrevented).toBe(true);
    expect(sends).toHaveBeenLastCalledWith({ type: "open", index: 18 });
    model.set("selected", 18);
    model.set("detail", "IPY_MODEL_x");
    await frame();
    const close = el.querySelector<HTMLButtonElement>(".igg-close") as HTMLButtonElement;
    close.focus();
    expect(press("Escape").defaultPrevented).toBe(true);
    expect(sends).toHaveBeenLastCalledWith({ type: "close" });
    // Focus went back to the image the detail showed, not out of the widget.
    expect(focused()).toBe("18");
    // Every control and cell carries the mark that keeps notebook shortcuts off it.
    const focusable = [...el.querySelectorAll<HTMLElement>("input, select, button, [tabindex]")];
    expect(focusable.length).toBeGreaterThan(10);
    for (const node of focusable) {
      expect(node.dataset.lmSuppressShortcuts).toBe("true");
    }
    dispose();
  });

  it("has the view's display controls: the same labels, ranges and effects", async () => {
    const model = new LocalModel(state(20));
    const el = document.createElement("div");
    document.body.append(el);
    const dispose = mountGallery(model, el, null);
    const view = document.createElement("div");
    document.body.append(view);
    const disposeView = mountView(new LocalModel(makeState()), view, { computeEnabled: true });
    const describe = (root: Element) =>
      [...root.querySelectorAll<HTMLInputElement>("fieldset.igw-display label")].map((label) => {
        const control = label.querySelector<HTMLInputElement>("input, select");
        return [
          label.querySelector(".igw-field-name")?.textContent,
          control?.type,
          control?.min,
          control?.max,
          control?.step,
          [...(control instanceof HTMLSelectElement ? control.options : [])].map((o) => o.value),
        ];
      });
    const shown = describe(el);
    expect(shown.length).toBeGreaterThanOrEqual(11);
    expect(shown).toEqual(describe(view));
    // A control in the Gallery sets its trait, with the same rules (below stays under above).
    const clipBelow = el.querySelector<HTMLInputElement>(
      "input.igw-clip-below",
    ) as HTMLInputElement;
    clipBelow.value = "99.95";
    clipBelow.dispatchEvent(new Event("input"));
    expect(model.get("clip_below_percentile")).toBe(99.8);
    const window = [...el.querySelectorAll("label")]
      .find((label) => label.textContent?.startsWith("window (px)"))
      ?.querySelector("input") as HTMLInputElement;
    window.value = "0";
    window.dispatchEvent(new Event("change"));
    expect(window.getAttribute("aria-invalid")).toBe("true");
    expect(model.get("structure")).toBe(3);
    disposeView();
    dispose();
  });

  it("has a colour key in words for the display options, without per-picture numbers", () => {
    const model = new LocalModel(state(20));
    const el = document.createElement("div");
    document.body.append(el);
    const dispose = mountGallery(model, el, null);
    const key = el.querySelector(".igg-key") as HTMLElement;
    const shown = () =>
      [...key.querySelectorAll<HTMLElement>(".igw-key-entry")].map((row) => ({
        meaning: row.querySelector(".igw-key-meaning")?.textContent,
        bar: row.querySelector<HTMLElement>(".igw-key-bar")?.style.background,
        numbers: row.querySelector<HTMLElement>(".igw-key-ends")?.hidden,
      }));
    // The bars of the view's key (showKey on colourKey) for the same options.
    const viewBars = (changes: Partial<RenderOptions>) => {
      const node = document.createElement("div");
      const one = Float32Array.of(1);
      showKey(node, colourKey(one, one, { ...RENDER_DEFAULTS, ...changes }));
      return [...node.querySelectorAll<HTMLElement>(".igw-key-bar")].map(
        (bar) => bar.style.background,
      );
    };
    const cases: [Partial<RenderOptions>, string[]][] = [
      [{}, ["red: raises the score"]],
      [{ polarity: "negative" }, ["blue: lowers the score"]],
      [{ polarity: "both" }, ["red: raises the score", "blue: lowers the score"]],
      // The keras style's own colours, drawn over black as that style draws them.
      [{ polarity: "both", style: "keras" }, ["green: raises the score", "red: lowers the score"]],
    ];
    for (const [changes, meanings] of cases) {
      // A display change updates the key.
      model.set("polarity", changes.polarity ?? "positive");
      model.set("picture_style", changes.style ?? "heatmap");
      const rows = shown();
      expect(rows.map((row) => row.meaning)).toEqual(meanings);
      expect(rows.map((row) => row.bar)).toEqual(viewBars(changes));
      expect(rows.every((row) => row.numbers)).toBe(true);
    }
    expect(shown()[0].bar).toContain("rgb(0, 204, 0) 100.00%");
    expect(key.textContent).toContain(GALLERY_SCALE_NOTE);
    expect(key.textContent).not.toMatch(/\d %/);
    dispose();
  });
});
