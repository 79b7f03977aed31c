// The colour key under an attribution panel, the panel's text description,
// and the readout of the values under the pointer. The key's numbers come
// from the renderer's colourKey (the same as igw.plot's and the PNG's); its
// texts from format.ts (the same as Python's). Nothing here is a live region:
// keys and readouts change with every slider move and would be announced
// over and over.

import { formatPercent, formatSigned, keyLabels, keyMeaning } from "../format";
import { TOP_PIXELS_PERCENT } from "../generated";
import type { KeyEntry, LegendEntry } from "../render";
import { element } from "./dom";

function gradient(entry: LegendEntry): string {
  const last = entry.colors.length - 1;
  const stops = entry.colors.map(
    ([red, green, blue], i) => `rgb(${red}, ${green}, ${blue}) ${((100 * i) / last).toFixed(2)}%`,
  );
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/** The parts of one key row that change with the options. */
interface KeyRow {
  row: HTMLElement;
  meaning: HTMLElement;
  top: HTMLElement;
  bar: HTMLElement;
  ends: HTMLElement;
  lowValue: HTMLElement;
  lowShare: Text;
  highValue: HTMLElement;
  highShare: Text;
  background: string;
}

const rows = new WeakMap<HTMLElement, KeyRow[]>();

function keyRow(): KeyRow {
  const row = element("div", "igw-key-entry");
  const meaning = element("div", "igw-key-meaning");
  const top = element("div", "igw-key-top");
  const bar = element("div", "igw-key-bar");
  // The bar repeats what the text says in colour.
  bar.setAttribute("aria-hidden", "true");
  const ends = element("div", "igw-key-ends");
  const low = element("span", "igw-key-low");
  const high = element("span", "igw-key-high");
  const lowValue = element("span", "igw-key-value");
  const highValue = element("span", "igw-key-value");
  const lowShare = document.createTextNode("");
  const highShare = document.createTextNode("");
  low.append(lowValue, lowShare);
  high.append(highValue, highShare);
  ends.append(low, high);
  row.append(meaning, bar, ends, top);
  return { row, meaning, top, bar, ends, lowValue, lowShare, highValue, highShare, background: "" };
}

/** A share's text with a no-break space before "%": a narrow key never wraps a number from its "%". */
export function unbroken(share: string): string {
  return share.replaceAll(" %", "\u00a0%");
}

function setText(node: Node, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

/** `count` rows in `node`, made or removed as needed and kept for the next call. */
function rowsOf(node: HTMLElement, count: number): KeyRow[] {
  const shown = rows.get(node) ?? [];
  while (shown.length > count) shown.pop()?.row.remove();
  while (shown.length < count) {
    const made = keyRow();
    node.append(made.row);
    shown.push(made);
  }
  rows.set(node, shown);
  return shown;
}

/** A row's colour: its class, meaning and bar. */
function paint(row: KeyRow, entry: LegendEntry, meaning: string): void {
  row.row.className = `igw-key-entry igw-key-${entry.polarity}`;
  setText(row.meaning, meaning);
  const background = gradient(entry);
  if (background !== row.background) {
    row.bar.style.background = background;
    row.background = background;
  }
}

/**
 * Show the key of `entries` in `node`, in plain words about `className`
 * (model text: set as text only). The rows are kept and only what
 * changed is written: a slider moves the values, rarely the colours, and
 * rebuilding the key (its 64-stop gradient above all) would cost the redraw
 * more than drawing the pictures.
 */
export function showKey(node: HTMLElement, entries: readonly KeyEntry[], className?: string): void {
  const shown = rowsOf(node, entries.length);
  entries.forEach((entry, i) => {
    const row = shown[i];
    const labels = keyLabels(entry, className);
    paint(row, entry, labels.meaning);
    setText(row.top, unbroken(labels.top));
    setText(row.lowValue, labels.low);
    setText(row.lowShare, unbroken(labels.low_share));
    setText(row.highValue, labels.high);
    setText(row.highShare, unbroken(labels.high_share));
  });
}

/**
 * Show the key of `entries` in `node` without numbers: what each colour
 * means, for pictures that are each scaled on their own and so share none.
 */
export function showLegend(
  node: HTMLElement,
  entries: readonly LegendEntry[],
  className?: string,
): void {
  for (const [i, row] of rowsOf(node, entries.length).entries()) {
    paint(row, entries[i], keyMeaning(entries[i], className));
    row.ends.hidden = true;
    row.top.hidden = true;
  }
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
