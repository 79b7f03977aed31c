// Numbers and key texts as the Python side writes them (ig_widget.render's
// format_number, format_percent and key_labels), so that the widget, the PNG
// export and igw.plot read alike. Tested against Python's output in
// js/tests/render.test.ts.

import { AMOUNTS, COLOUR_NAMES, MEANINGS, TOP_PIXELS_PERCENT, UNNAMED_COLOUR } from "./generated";
import type { KeyEntry } from "./render";

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

/** One key entry's texts in plain words, as ig_widget.render.key_labels writes them. */
export function keyLabels(entry: KeyEntry, className?: string): KeyLabels {
  const sign = entry.polarity === "negative" ? -1 : 1;
  const name = colourName(entry.color);
  const amount = AMOUNTS[entry.polarity];
  const ofClass = className === undefined ? "" : ` of '${className}'`;
  return {
    meaning: `${name}: ${MEANINGS[entry.polarity]}${ofClass}`,
    low: entry.low > 0 ? formatNumber(sign * entry.low) : "0",
    high: formatNumber(sign * entry.high),
    low_share: `all ${name}: ${formatPercent(entry.low_share)} of ${amount}`,
    high_share: `strongest ${name}: ${formatPercent(entry.high_share)} of ${amount}`,
    top:
      `the strongest ${TOP_PIXELS_PERCENT} % of pixels carry ` +
      `${formatPercent(entry.top_share)} of ${amount}`,
  };
}
