// The colour key under an attribution panel, the panel's text description,
// and the readout of the values under the pointer. The key's numbers come
// from the renderer's colourKey (the same as igw.plot's and the PNG's); its
// texts from format.ts (the same as Python's). Nothing here is a live region:
// keys and readouts change with every slider move and would be announced
// over and over.

import { formatPercent, formatSigned, keyLabels } from "../format";
import { TOP_PIXELS_PERCENT } from "../generated";
import type { KeyEntry } from "../render";
import { element } from "./dom";

function gradient(entry: KeyEntry): string {
  const last = entry.colors.length - 1;
  const stops = entry.colors.map(
    ([red, green, blue], i) => `rgb(${red}, ${green}, ${blue}) ${((100 * i) / last).toFixed(2)}%`,
  );
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/** Replace the contents of `node` with the key of `entries`. */
export function showKey(node: HTMLElement, entries: readonly KeyEntry[]): void {
  node.replaceChildren(
    ...entries.map((entry) => {
      const labels = keyLabels(entry);
      const row = element("div", `igw-key-entry igw-key-${entry.polarity}`);
      const bar = element("div", "igw-key-bar");
      bar.style.background = gradient(entry);
      // The bar repeats what the text says in colour.
      bar.setAttribute("aria-hidden", "true");
      const ends = element("div", "igw-key-ends");
      const low = element("span", "igw-key-low");
      low.append(element("span", "igw-key-value", labels.low), labels.low_share);
      const high = element("span", "igw-key-high");
      high.append(element("span", "igw-key-value", labels.high), labels.high_share);
      ends.append(low, high);
      row.append(
        element("div", "igw-key-meaning", `${entry.polarity}: ${labels.meaning}`),
        bar,
        ends,
      );
      return row;
    }),
  );
}

/**
 * A panel's description: what it shows, for which class, and how concentrated
 * the attribution is ("the strongest 5 % of pixels hold 62 % of the positive total").
 */
export function describe(title: string, label: string, entries: readonly KeyEntry[]): string {
  const parts = entries.map((entry) =>
    entry.total > 0
      ? `${formatPercent(entry.top_share)} of the ${entry.polarity} total`
      : `no ${entry.polarity} attribution`,
  );
  if (parts.length === 0) {
    return `${title} for “${label}”.`;
  }
  return (
    `${title} for “${label}”: the strongest ${TOP_PIXELS_PERCENT} % of pixels hold ` +
    `${parts.join(" and ")}.`
  );
}

/** Values of one map under the pointer, with their rank among the map's pixels. */
export class Ranked {
  private readonly magnitudes: Float32Array;

  constructor(
    readonly positive: Float32Array,
    readonly negative: Float32Array,
  ) {
    const magnitudes = new Float32Array(positive.length);
    for (let i = 0; i < positive.length; i++) {
      magnitudes[i] = Math.abs(positive[i] - negative[i]);
    }
    this.magnitudes = magnitudes.sort();
  }

  /** The channel-mean value at pixel `i` (positive part minus negative part). */
  value(i: number): number {
    return this.positive[i] - this.negative[i];
  }

  /** Percent of the pixels whose magnitude is below the magnitude at pixel `i`. */
  percentile(i: number): number {
    const magnitude = Math.abs(this.value(i));
    let low = 0;
    let high = this.magnitudes.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.magnitudes[middle] < magnitude) low = middle + 1;
      else high = middle;
    }
    return this.magnitudes.length === 0 ? 0 : (100 * low) / this.magnitudes.length;
  }

  /** "+6.55e-5 (stronger than 97 % of pixels)". */
  describe(i: number): string {
    return `${formatSigned(this.value(i))} (stronger than ${formatPercent(this.percentile(i))} of pixels)`;
  }
}

export const READOUT_HINT = "Hover over a panel to read the values under the pointer.";

/** The readout line: the pixel's position and each map's value there, with its rank. */
export function readout(
  x: string,
  y: string,
  averaged: boolean,
  maps: readonly { name: string; ranked: Ranked }[],
  pixel: number,
): string {
  const values = maps.map(({ name, ranked }) => `${name} ${ranked.describe(pixel)}`);
  const mean = averaged ? "channel mean, block mean" : "channel mean";
  return `x ${x}, y ${y} · ${mean}: ${values.join(" · ")}`;
}
