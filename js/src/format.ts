// Numbers and key texts as the Python side writes them (ig_widget.render's
// format_number, format_percent and key_labels), so that the widget, the PNG
// export and igw.plot read alike. Tested against Python's output in
// js/tests/render.test.ts.

import { MEANINGS, SHARE_PREFIXES } from "./generated";
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

function shareText(end: keyof typeof SHARE_PREFIXES, share: number): string {
  return `${SHARE_PREFIXES[end]}: ${formatPercent(share)} of total`;
}

export interface KeyLabels {
  meaning: string;
  low: string;
  high: string;
  low_share: string;
  high_share: string;
}

/** What one key entry's colour means and what its two ends stand for; negative values negative. */
export function keyLabels(entry: KeyEntry): KeyLabels {
  const sign = entry.polarity === "negative" ? -1 : 1;
  return {
    meaning: MEANINGS[entry.polarity],
    low: entry.low > 0 ? formatNumber(sign * entry.low) : "0",
    high: formatNumber(sign * entry.high),
    low_share: shareText("low", entry.low_share),
    high_share: shareText("high", entry.high_share),
  };
}
