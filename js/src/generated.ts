// Generated from the Python package by `python -m tests.typescript js/src/generated.ts`;
// do not edit. tests/test_typescript.py fails when it is out of date.

export type Color = [number, number, number];
/** A binary trait as the widget model holds it. */
export type Binary = DataView | ArrayBuffer | ArrayBufferView;
export type Style = "heatmap" | "keras";
export type Polarity = "positive" | "negative" | "both";

/** Display options, as igw.render's keywords. */
export interface RenderOptions {
  style: Style;
  polarity: Polarity;
  clip_above_percentile: number;
  clip_below_percentile: number;
  morphological_cleanup: boolean;
  structure: number;
  outlines: boolean;
  outlines_component_percentage: number;
  overlay: boolean;
  positive_color: Color | null;
  negative_color: Color | null;
  patch: number;
}

/** igw.render's defaults. Copy before changing. */
export const RENDER_DEFAULTS: RenderOptions = { style: "heatmap", polarity: "positive", clip_above_percentile: 99.9, clip_below_percentile: 0.0, morphological_cleanup: false, structure: 3, outlines: false, outlines_component_percentage: 90.0, overlay: true, positive_color: null, negative_color: null, patch: 0 };

/** Picture styles, the default first. */
export const STYLES = ["heatmap", "keras"] as const;

/** Which signs a picture draws. */
export const POLARITIES = ["positive", "negative", "both"] as const;

/** Each style's colours, used where an option colour is null. */
export const STYLE_COLORS = { heatmap: { positive: [255, 48, 0], negative: [33, 102, 172] }, keras: { positive: [0, 255, 0], negative: [255, 0, 0] } } as const;

/** Largest cleanup window. */
export const MAX_STRUCTURE = 64;

/** Largest patch side of the patch view. */
export const MAX_PATCH = 512;

/** Strength above which a pixel belongs to an outlined region. */
export const BINARIZE_THRESHOLD = 0.001;

/** At most this many regions are outlined. */
export const MAX_OUTLINED_COMPONENTS = 3;

/** keras style: the share of the colour added to the image. */
export const OVERLAY_WEIGHT = 0.8;

/** heatmap style: the grey image's weights of red, green and blue. */
export const LUMA_WEIGHTS = [0.299, 0.587, 0.114] as const;

/** heatmap style: a pixel is opaque from this strength on. */
export const OPAQUE_STRENGTH = 0.5;

/** heatmap style: at full strength the colour is darkened by this fraction. */
export const DEEPEN = 0.5;

/** heatmap style: on a ground of lower mean luma the colours lighten. */
export const DARK_GROUND = 64.0;

/** heatmap style, dark ground: at full strength the colour goes this far to white. */
export const LIGHTEN = 0.7;

/** The colour key samples this many strengths from 0 to 1. */
export const KEY_STOPS = 64;

/** The colour key is drawn over this grey when no ground is given. */
export const KEY_BACKGROUND = 128;

/** A panel's concentration: the share held by this % of the pixels. */
export const TOP_PIXELS_PERCENT = 5;

/** What each sign's colour says about the score. */
export const MEANINGS = { positive: "raises the score", negative: "lowers the score" } as const;

/** A key's name for each style colour (by hex code). */
export const COLOUR_NAMES = { "#ff3000": "red", "#2166ac": "blue", "#00ff00": "green", "#ff0000": "red" } as const;

/** A key's name for any other colour. */
export const UNNAMED_COLOUR = "coloured";

/** What a sign's total is called in a key: the score's rise or fall. */
export const AMOUNTS = { positive: "the rise", negative: "the fall" } as const;

/** Baselines that differ between runs. (ig_widget.baselines) */
export const RANDOM_BASELINES = ["uniform"] as const;

/** Integration rules that take steps "auto". (ig_widget.quadrature) */
export const AUTO_STEPS_METHODS = ["trapezoid"] as const;

/** Most steps (and runs) a computation takes. (ig_widget.options) */
export const MAX_STEPS = 10000;

/** The binary traits holding channel maps (float32). (ig_widget.widget.shown) */
export const MAP_BUFFERS = ["gradient_positive", "gradient_negative", "explainer_positive", "explainer_negative", "compare_positive", "compare_negative"] as const;

/** Render options whose trait has another name. (ig_widget.widget.options) */
export const TRAIT_OF_OPTION = { style: "picture_style" } as const;

/** The traits of the render options, in order. (ig_widget.widget.options) */
export const DISPLAY_TRAITS = ["picture_style", "polarity", "clip_above_percentile", "clip_below_percentile", "morphological_cleanup", "structure", "outlines", "outlines_component_percentage", "overlay", "positive_color", "negative_color", "patch"] as const;

/** Attribution methods that take the steps. (ig_widget.widget.methods) */
export const STEPS_METHODS = ["integrated_gradients", "blur_ig", "guided_ig", "xrai"] as const;

/** Attribution methods that take the baseline. (ig_widget.widget.methods) */
export const BASELINE_METHODS = ["integrated_gradients", "guided_ig", "occlusion"] as const;

/** Attribution methods that take the rule. (ig_widget.widget.methods) */
export const QUADRATURE_METHODS = ["integrated_gradients", "xrai"] as const;

/** How the progress names stability runs. (ig_widget.widget.methods) */
export const STABILITY_STAGE = "Stability";

/** Methods the Stability button runs. (ig_widget.widget.methods) */
export const STABILITY_METHODS = ["integrated_gradients", "smoothgrad", "expected_gradients", "guided_ig", "xrai", "occlusion"] as const;

/** The progress line of a sanity check starts so. (ig_widget.widget.shown) */
export const SANITY_STAGE = "Sanity check";

/** One method's insertion and deletion curves (an entry of the ``curves`` trait). */
export interface Curve {
  explainer: string;
  title: string;
  fractions: number[];
  insertion: number[];
  deletion: number[];
  insertion_auc: number;
  deletion_auc: number;
}

/** The target score along the path (the ``path`` trait), mean and range over the runs. */
export interface PathData {
  alphas: number[];
  mean: number[];
  low: number[];
  high: number[];
  baseline_score: number;
  score: number;
}

/** The sanity check shown (the ``sanity`` trait); no steps: none shown. */
export interface SanityData {
  explainer_title: string;
  target: number;
  label: string;
  size: number[];
  steps: SanityStep[];
}

/** One step of a sanity check as shown, with its map's similarities to the original. */
export interface SanityStep {
  label: string;
  spearman_abs: number | null;
  spearman: number | null;
  ssim: number | null;
}

/** The shown method's stability over several runs (the ``stability_shown`` trait). */
export interface StabilityShown {
  explainer: string;
  title: string;
  runs: string[];
  rank_correlation: number;
  top_share: number;
  top_percent: number;
  points_used: number;
  elapsed_s: number;
}

/** The shown result in brief (the ``summary`` trait). */
export interface Summary {
  target: number;
  label: string;
  against: number | null;
  against_label: string;
  region: string;
  score: number;
  predicted: number;
  predicted_label: string;
  predicted_score: number;
  explainer: string;
  explainer_title: string;
  compare: string;
  compare_title: string;
  delta: number | null;
  gradients: boolean;
  total: number;
  falling_note: string;
  steps: number;
  method: string;
  runs: number;
  points_used: number;
  elapsed_s: number;
  display_factor: number;
}

/** IGWidget's synced traits (Python names and value types). */
export interface WidgetState {
  [key: string]: unknown;
  against: number | null;
  baseline: "black" | "white" | "uniform" | "blur" | "custom";
  baseline_choices: string[];
  classes: [number, string, number][];
  clip_above_percentile: number;
  clip_below_percentile: number;
  compare: "" | "integrated_gradients" | "smoothgrad" | "expected_gradients" | "blur_ig" | "guided_ig" | "xrai" | "gradcam" | "guided_gradcam" | "occlusion";
  compare_negative: Binary;
  compare_positive: Binary;
  compute_enabled: boolean;
  computing: boolean;
  curves: Curve[];
  display_size: [number, number];
  error: string;
  explainer: "integrated_gradients" | "smoothgrad" | "expected_gradients" | "blur_ig" | "guided_ig" | "xrai" | "gradcam" | "guided_gradcam" | "occlusion";
  explainer_choices: [string, string][];
  explainer_negative: Binary;
  explainer_positive: Binary;
  gradient_negative: Binary;
  gradient_positive: Binary;
  image_rgb: Binary;
  image_size: [number, number];
  method: "trapezoid" | "riemann_left" | "riemann_right" | "riemann_middle" | "gausslegendre";
  method_choices: string[];
  morphological_cleanup: boolean;
  negative_color: [number, number, number] | null;
  notice: string;
  outlines: boolean;
  outlines_component_percentage: number;
  overlay: boolean;
  patch: number;
  path: PathData;
  picture_style: "heatmap" | "keras";
  polarity: "positive" | "negative" | "both";
  positive_color: [number, number, number] | null;
  progress: [number, number];
  progress_stage: string;
  region_mask: Binary;
  region_size: [number, number];
  runs: number;
  sanity: SanityData;
  sanity_maps: Binary;
  sanity_rgb: Binary;
  stability_shown: StabilityShown | null;
  stability_spread: Binary;
  stale: boolean;
  steps: number | "auto";
  structure: number;
  summary: Summary;
  target: number;
}
