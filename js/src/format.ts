// Numbers and key texts as the Python side writes them (ig_widget.render's
// format_number, format_percent and key_labels), so that the widget, the PNG
// export and igw.plot read alike. Tested against Python's output in
// js/tests/render.test.ts.

import { AMOUNTS, COLOUR_NAMES, MEANINGS, TOP_PIXELS_PERCENT, UNNAMED_COLOUR } from "./generated";
import type { KeyEntry, LegendEntry } from "./render";

/** Three significant digits, in exponent form below 1e-3 or from 1e4 on. */
export function formatNumber(value: number): string {
  if (value === 0) {
    return "0";
  }
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e4
    ? value.toPrecision(3)
    : value.toExponential(2);
}

/** A signed value: "+" before positive numbers. */
export function formatSigned(value: number): string {
  const text = formatNumber(value);
  return value > 0 ? `+${text}` : text;
}

/** A percentage with up to three significant digits and its sign, e.g. "0.1 %". */
export function formatPercent(value: number): string {
  return `${Number(value.toPrecision(3))} %`;
}

/** A colour's name in a key: "red", "blue", "green", or "coloured" for any other. */
export function colourName(color: readonly number[]): string {
  const hex = `#${color.map((channel) => channel.toString(16).padStart(2, "0")).join("")}`;
  return (COLOUR_NAMES as Record<string, string>)[hex] ?? UNNAMED_COLOUR;
}

export interface KeyLabels {
  meaning: string;
  low: string;
  high: string;
  low_share: string;
  high_share: string;
  top: string;
}

/** What a key entry's colour means: "red: raises the score of 'star'". */
export function keyMeaning(entry: LegendEntry, className?: string): string {
  const ofClass = className === undefined ? "" : ` of '${className}'`;
  return `${colourName(entry.color)}: ${MEANINGS[entry.polarity]}${ofClass}`;
}

/** One key entry's texts in plain words, as ig_widget.render.key_labels writes them. */
export function keyLabels(entry: KeyEntry, className?: string): KeyLabels {
  const sign = entry.polarity === "negative" ? -1 : 1;
  const name = colourName(entry.color);
  const amount = AMOUNTS[entry.polarity];
  return {
    meaning: keyMeaning(entry, className),
    low: entry.low > 0 ? formatNumber(sign * entry.low) : "0",
    high: formatNumber(sign * entry.high),
    low_share: `all ${name}: ${formatPercent(entry.low_share)} of ${amount}`,
    high_share: `strongest ${name}: ${formatPercent(entry.high_share)} of ${amount}`,
    top:
      `the strongest ${TOP_PIXELS_PERCENT} % of pixels carry ` +
      `${formatPercent(entry.top_share)} of ${amount}`,
  };
}

const FSI = "\u2068";
const PDI = "\u2069";
const ISOLATE_OPENERS = new Set(["\u2066", "\u2067", "\u2068"]);

/**
 * A name from a model or a user (class name, file name) isolated from the
 * text around it: a right-to-left override in it (U+202E) or its own
 * direction then reaches neither the words before nor after it, as with
 * `<bdi>`, but also in option texts, tooltips and canvas text. The name is
 * wrapped in First Strong Isolate ... Pop Directional Isolate; a stray PDI in
 * the name, which would close that isolate early, closes an extra one opened
 * for it instead.
 */
export function isolate(name: string): string {
  let depth = 0;
  let stray = 0;
  for (const char of name) {
    if (ISOLATE_OPENERS.has(char)) {
      depth += 1;
    } else if (char === PDI) {
      if (depth > 0) depth -= 1;
      else stray += 1;
    }
  }
  return `${FSI.repeat(1 + stray)}${name}${PDI}`;
}
