// The Gallery's synced state and what its parts read from it. The display
// options are the view's traits (ModelState); the rest is the Gallery's own.

import type { AnyModel } from "@anywidget/types";
import { isolate } from "../format";
import type { Binary, RenderOptions } from "../generated";

/** [name, kind]: kind is "number", "integer", "class", "boolean" or "text". */
export type ColumnSpec = [string, string];
/** [column, operator, value]. */
export type Filter = [string, string, number | string | boolean];

/** The display options travel as the widget's traits (style as picture_style). */
export interface GalleryState extends Omit<RenderOptions, "style"> {
  [key: string]: unknown;
  picture_style: RenderOptions["style"];
  columns: ColumnSpec[];
  sort_by: string;
  descending: boolean;
  filters: Filter[];
  order: Binary;
  total: number;
  class_names: string[];
  thumbnail_size: [number, number];
  selected: number;
  detail: string | null;
  /** A comparison's: store a's view, shown left of `detail` (store b's). */
  detail_a: string | null;
  /** A comparison's names of stores a and b (empty otherwise). */
  compared_names: string[];
  live: boolean;
  error: string;
  /** Per cluster of igw.cluster_maps: [number, class, size] (none without clusters). */
  clusters: [number, number, number][];
  /** The clusters' mean display images (uint8 RGB) and mean maps (float32, 2 per cluster). */
  cluster_rgb: Binary;
  cluster_maps: Binary;
}

export type GalleryModel = AnyModel<GalleryState>;

/** One image's caption values, as the kernel sends them with its thumbnail. */
export interface Caption {
  source: string;
  label: number | null;
  predicted: number;
  target: number;
  score: number;
  /** Integrated gradients' completeness error; absent for a method without one. */
  delta?: number;
  correct: boolean | null;
  mask_share?: number | null;
  cluster?: number | null;
  /** A comparison's: Spearman correlation of the two maps, IoU of their top pixels. */
  rank_correlation?: number | null;
  top_iou?: number | null;
}

/** Class `index`'s name, isolated from the text around it ("?" for none). */
export function classNameOf(model: GalleryModel, index: number | null): string {
  if (index === null) {
    return "?";
  }
  return isolate(model.get("class_names")[index] ?? `class ${index}`);
}

/** The kind of table column `name` ("number" when unknown). */
export function columnKindOf(model: GalleryModel, name: string): string {
  return model.get("columns").find(([column]) => column === name)?.[1] ?? "number";
}
