/// <reference types="node" />
// Parity of the browser renderer with ig_widget.render.render_maps, on the
// cases tests/js_vectors.py writes (the Makefile runs it before vitest).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { keyLabels } from "../src/format";
import {
  colourKey,
  groundLuma,
  type KeyEntry,
  outlineRegion,
  REGION_COLOR,
  RENDER_DEFAULTS,
  type RenderOptions,
  renderMaps,
} from "../src/render";

type Block = [offset: number, bytes: number];

interface VectorIndex {
  inputs: Record<
    string,
    { width: number; height: number; image: Block; positive: Block; negative: Block }
  >;
  cases: { input: string; options: Partial<RenderOptions>; expected: Block }[];
  keys: {
    input: string;
    options: Partial<RenderOptions>;
    ground: number | null;
    entries: (KeyEntry & { labels: ReturnType<typeof keyLabels> })[];
  }[];
  regions: {
    input: string;
    mask_width: number;
    mask_height: number;
    mask: Block;
    expected: Block;
  }[];
}

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), "vectors");
const INDEX = join(VECTORS, "index.json");

function loadVectors(): { index: VectorIndex; blob: Buffer } {
  if (!existsSync(INDEX)) {
    throw new Error(
      `No renderer test vectors in ${VECTORS}. Generate them with ` +
        "`.venv/bin/python -m tests.js_vectors js/tests/vectors` (make test-js does).",
    );
  }
  return {
    index: JSON.parse(readFileSync(INDEX, "utf8")) as VectorIndex,
    blob: readFileSync(join(VECTORS, "vectors.bin")),
  };
}

const { index, blob } = loadVectors();

function bytes([offset, length]: Block): Uint8Array {
  return new Uint8Array(blob.buffer, blob.byteOffset + offset, length);
}

function floats([offset, length]: Block): Float32Array {
  // Copied: the Buffer's own offset in its pool need not be 4-byte aligned.
  return new Float32Array(bytes([offset, length]).slice().buffer);
}

const inputs = Object.fromEntries(
  Object.entries(index.inputs).map(([name, input]) => [
    name,
    {
      width: input.width,
      height: input.height,
      image: bytes(input.image),
      positive: floats(input.positive),
      negative: floats(input.negative),
    },
  ]),
);

function optionsOf(partial: Partial<RenderOptions>): RenderOptions {
  return { ...RENDER_DEFAULTS, ...partial };
}

/** Pixels whose RGB differs from the expected RGB, and the largest difference. */
function compare(rgba: Uint8ClampedArray, expected: Uint8Array): { off: number; worst: number } {
  let off = 0;
  let worst = 0;
  for (let p = 0; p < expected.length / 3; p++) {
    let pixelWorst = 0;
    for (let c = 0; c < 3; c++) {
      pixelWorst = Math.max(pixelWorst, Math.abs(rgba[p * 4 + c] - expected[p * 3 + c]));
    }
    if (pixelWorst > 0) off++;
    worst = Math.max(worst, pixelWorst);
  }
  return { off, worst };
}

describe("renderMaps matches the Python renderer", () => {
  it("has vectors for every input kind the generator promises", () => {
    const names = Object.keys(inputs);
    for (const kind of ["column_30x1", "row_1x23", "zeros", "single_pixel", "tiny_cnn_ig"]) {
      expect(names.some((name) => name.startsWith(kind))).toBe(true);
    }
    expect(index.cases.length).toBeGreaterThan(1000);
    // The patch view, with squares cut by the right and bottom edges.
    expect(index.cases.some((c) => (c.options.patch ?? 0) > 0)).toBe(true);
    expect(index.keys.some((k) => (k.options.patch ?? 0) > 0)).toBe(true);
  });

  for (const name of Object.keys(inputs)) {
    it(`renders every option set exactly on ${name}`, () => {
      const input = inputs[name];
      const cases = index.cases.filter((c) => c.input === name);
      expect(cases.length).toBeGreaterThan(0);
      const failures: string[] = [];
      for (const c of cases) {
        const rgba = renderMaps(
          input.image,
          input.positive,
          input.negative,
          input.width,
          input.height,
          optionsOf(c.options),
        );
        const { off, worst } = compare(rgba, bytes(c.expected));
        if (off > 0) {
          failures.push(`${JSON.stringify(c.options)}: ${off} pixels off, worst by ${worst}`);
        }
        for (let p = 3; p < rgba.length; p += 4) {
          if (rgba[p] !== 255) {
            failures.push(`${JSON.stringify(c.options)}: alpha ${rgba[p]} at pixel ${p >> 2}`);
            break;
          }
        }
      }
      expect(failures).toEqual([]);
    });
  }
});

describe("outlineRegion matches the Python outline_region", () => {
  it("outlines masks coarser, as fine and finer than every input, exactly", () => {
    expect(index.regions.length).toBeGreaterThan(6 * 10);
    const failures: string[] = [];
    let outlined = 0;
    for (const region of index.regions) {
      const input = inputs[region.input];
      const image = input.image.slice();
      outlineRegion(
        image,
        input.width,
        input.height,
        bytes(region.mask),
        region.mask_width,
        region.mask_height,
      );
      const expected = bytes(region.expected);
      const off = expected.findIndex((value, i) => value !== image[i]);
      if (off >= 0) {
        failures.push(
          `${region.input} mask ${region.mask_height}x${region.mask_width}: byte ${off}`,
        );
      }
      if (expected.some((value, i) => value !== input.image[i])) outlined++;
    }
    expect(failures).toEqual([]);
    // The vectors draw outlines, not only unchanged pictures.
    expect(outlined).toBeGreaterThan(index.regions.length / 2);
  });

  it("draws a coarse mask's region border scaled to the picture", () => {
    const image = new Uint8Array(4 * 6 * 3);
    outlineRegion(image, 6, 4, Uint8Array.from([0, 1, 0, 1]), 2, 2);
    const drawn = Array.from({ length: 24 }, (_, p) => (image[p * 3] === REGION_COLOR[0] ? 1 : 0));
    expect(drawn).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1]);
  });
});

describe("colourKey matches the Python colour_key", () => {
  it("has key cases for every input", () => {
    expect(new Set(index.keys.map((k) => k.input))).toEqual(new Set(Object.keys(inputs)));
  });

  for (const name of Object.keys(inputs)) {
    it(`describes every option set exactly on ${name}`, () => {
      const input = inputs[name];
      for (const { options, ground, entries } of index.keys.filter((k) => k.input === name)) {
        if (ground !== null) {
          // The picture's ground luma, to the last bit, as the Python renderer computes it.
          expect(groundLuma(input.image, true)).toBe(ground);
        }
        const computed = colourKey(
          input.positive,
          input.negative,
          optionsOf(options),
          ground ?? undefined,
          input.width,
        );
        expect(computed.map((entry) => ({ ...entry, labels: keyLabels(entry) }))).toEqual(entries);
      }
    });
  }
});

describe("renderMaps buffers and checks", () => {
  const input = inputs.smooth_17x40;
  const args = [input.image, input.positive, input.negative, input.width, input.height] as const;

  it("fills a given output buffer and gives the same pixels as a fresh one", () => {
    const options = optionsOf({ polarity: "both", outlines: true, morphological_cleanup: true });
    const out = new Uint8ClampedArray(input.width * input.height * 4).fill(7);
    const returned = renderMaps(...args, options, out);
    expect(returned).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(renderMaps(...args, options)));
  });

  it("gives the same pixels after rendering a larger image (reused scratch space)", () => {
    const options = optionsOf({ outlines: true });
    const before = Array.from(renderMaps(...args, options));
    const big = inputs.spike_40x40;
    renderMaps(big.image, big.positive, big.negative, big.width, big.height, options);
    expect(Array.from(renderMaps(...args, options))).toEqual(before);
  });

  it("notices maps changed in place and maps it has not seen", () => {
    // What a redraw reuses per map (sorted values, cleaned map) must follow
    // the map's contents, not the array object.
    const options = optionsOf({ morphological_cleanup: true, outlines: true });
    const other = inputs.smooth_24x24;
    const positive = input.positive.slice();
    const negative = input.negative.slice();
    const draw = () =>
      Array.from(renderMaps(input.image, positive, negative, 40, 17, options)).join();
    const original = draw();
    positive.set(input.positive.map((v, i) => (i % 7 === 0 ? 0 : v * 1.5 + 0.01)));
    const changed = draw();
    expect(changed).not.toEqual(original);
    const fresh = renderMaps(input.image, positive.slice(), negative.slice(), 40, 17, options);
    expect(changed).toEqual(Array.from(fresh).join());
    positive.set(input.positive);
    expect(draw()).toEqual(original);
    const bigger = renderMaps(
      other.image,
      other.positive,
      other.negative,
      other.width,
      other.height,
      optionsOf({ ...options, structure: 4 }),
    );
    expect(bigger.length).toBe(24 * 24 * 4);
    expect(draw()).toEqual(original);
  });

  it("rejects negative, NaN and infinite map values, naming the map", () => {
    const ok = optionsOf({});
    for (const bad of [-0.25, Number.NaN, Number.POSITIVE_INFINITY]) {
      const negative = input.negative.slice();
      negative[5] = bad;
      expect(() =>
        renderMaps(input.image, input.positive, negative, 40, 17, optionsOf({ polarity: "both" })),
      ).toThrow(/negative: expected finite values >= 0/);
    }
    const positive = input.positive.slice();
    positive[0] = -1;
    expect(() => renderMaps(input.image, positive, input.negative, 40, 17, ok)).toThrow(
      /positive: expected finite values >= 0 .* got -1 at 0/,
    );
  });

  it("rejects inconsistent sizes and bad options, naming them", () => {
    const ok = optionsOf({});
    expect(() => renderMaps(input.image, input.positive, input.negative, 40, 16, ok)).toThrow(
      /image: expected 1920 RGB bytes/,
    );
    expect(() =>
      renderMaps(input.image, input.positive.subarray(1), input.negative, 40, 17, ok),
    ).toThrow(/positive, negative: expected 680 values/);
    expect(() => renderMaps(...args, ok, new Uint8ClampedArray(10))).toThrow(/out: expected 2720/);
    expect(() => renderMaps(...args, optionsOf({ structure: 0 }))).toThrow(/structure/);
    expect(() => renderMaps(...args, optionsOf({ structure: 2.5 }))).toThrow(/structure/);
    expect(() =>
      renderMaps(...args, optionsOf({ clip_above_percentile: 20, clip_below_percentile: 20 })),
    ).toThrow(/clip_below_percentile: expected a value below/);
    expect(() => renderMaps(...args, optionsOf({ clip_above_percentile: 101 }))).toThrow(
      /clip_above_percentile: expected a number in \[0, 100\]/,
    );
    expect(() => renderMaps(...args, optionsOf({ positive_color: [0, 256, 0] }))).toThrow(
      /positive_color/,
    );
    expect(() =>
      renderMaps(...args, optionsOf({ polarity: "sideways" as RenderOptions["polarity"] })),
    ).toThrow(/polarity/);
  });
});
