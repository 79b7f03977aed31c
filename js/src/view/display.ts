// The display controls, one module for every widget that draws pictures: the
// view and the Gallery build them from here, so each display option (and any
// added later) appears in both with the same label, range and keys. Display
// options are redrawn in the browser at once; sliders send their value to the
// kernel when the move ends.

import { MAX_PATCH, MAX_STRUCTURE, POLARITIES, STYLES } from "../generated";
import { polarityColors } from "../render";
import { type DisplayTraits, ModelState } from "../state";
import {
  button,
  checkbox,
  element,
  type Field,
  field,
  numberBox,
  range,
  type Scope,
  select,
} from "./dom";
import { type Fields, onEntry } from "./fields";

type Slider = "clip_above_percentile" | "clip_below_percentile" | "outlines_component_percentage";
type Toggle = "morphological_cleanup" | "outlines" | "overlay";

/** What each builder below needs: the model, the registered fields, the scope of listeners. */
interface Context {
  state: ModelState<DisplayTraits>;
  fields: Fields;
  scope: Scope;
}

// The clip sliders keep below < above by at least this much, which the renderer requires.
const CLIP_GAP = 0.1;

function toHex(color: readonly number[]): string {
  return `#${color.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

function fromHex(hex: string): [number, number, number] {
  const value = Number.parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

/** A percentage for a slider's label and its accessible value. */
function percent(value: number): string {
  return `${value} %`;
}

function choice<K extends "picture_style" | "polarity">(
  { state, fields, scope }: Context,
  key: K,
  name: string,
  choices: readonly DisplayTraits[K][],
): Field {
  const node = select(choices);
  const target = fields.register(key, field(name, node), (value) => {
    node.value = String(value);
  });
  scope.on(node, "change", () => state.commit(key, node.value as DisplayTraits[K]));
  return target;
}

/** A slider that redraws while it moves (set) and tells the kernel when the move ends. */
function slider(
  { state, fields, scope }: Context,
  key: Slider,
  name: string,
  step: number,
  lowest: () => number,
  highest: () => number,
): Field {
  const input = range(0, 100, step);
  const shown = element("span", "igw-value");
  shown.setAttribute("aria-hidden", "true");
  const target = field(name, input);
  target.element.querySelector("label")?.append(shown);
  const write = (value: unknown): void => {
    input.value = String(value);
    shown.textContent = percent(Number(value));
    input.setAttribute("aria-valuetext", percent(Number(value)));
  };
  fields.register(key, target, write);
  scope.on(input, "input", () => {
    const value = Math.min(Math.max(Number(input.value), lowest()), highest());
    const tidy = Number((Math.round(value / step) * step).toFixed(1));
    write(tidy);
    state.set(key, tidy);
  });
  scope.on(input, "change", () => state.save());
  return target;
}

function toggle({ state, fields, scope }: Context, key: Toggle, name: string): Field {
  const box = checkbox();
  const target = fields.register(key, field(name, box), (value) => {
    box.checked = Boolean(value);
  });
  scope.on(box, "change", () => state.commit(key, box.checked));
  return target;
}

/** The two colour pickers and the button that gives the style's colours back. */
function colours({ state, scope }: Context): { element: HTMLElement; show: () => void } {
  const picker = (name: string): Field => {
    const node = element("input");
    node.type = "color";
    return field(name, node);
  };
  const positive = picker("positive colour");
  const negative = picker("negative colour");
  const styleColours = button("style colours", "igw-style-colors");
  styleColours.title = "Use the style's own colours again";
  for (const [key, target] of [
    ["positive_color", positive],
    ["negative_color", negative],
  ] as const) {
    const input = target.control as HTMLInputElement;
    scope.on(input, "input", () => state.set(key, fromHex(input.value)));
    scope.on(input, "change", () => state.save());
  }
  scope.on(styleColours, "click", () => {
    state.set("positive_color", null);
    state.commit("negative_color", null);
  });
  const root = element("span", "igw-colors");
  root.append(positive.element, negative.element, styleColours);
  const show = (): void => {
    const shown = polarityColors(state.renderOptions());
    (positive.control as HTMLInputElement).value = toHex(shown.positive);
    (negative.control as HTMLInputElement).value = toHex(shown.negative);
    styleColours.hidden =
      state.get("positive_color") === null && state.get("negative_color") === null;
  };
  return { element: root, show };
}

/**
 * The "Display" group of `state`'s display options, its values registered in
 * `fields` (a refused window size stays marked there), its listeners in `scope`.
 *
 * @example
 * display.append(createDisplayControls(new ModelState(model), new Fields(state), scope));
 */
export function createDisplayControls(
  state: ModelState<DisplayTraits>,
  fields: Fields,
  scope: Scope,
): HTMLFieldSetElement {
  const context = { state, fields, scope };
  const root = element("fieldset", "igw-group igw-display");
  root.append(element("legend", undefined, "Display"));
  const style = choice(context, "picture_style", "style", STYLES);
  const polarity = choice(context, "polarity", "polarity", POLARITIES);
  polarity.control.classList.add("igw-polarity");
  const clipAbove = slider(
    context,
    "clip_above_percentile",
    "clip above",
    0.1,
    () => state.get("clip_below_percentile") + CLIP_GAP,
    () => 100,
  );
  clipAbove.control.classList.add("igw-clip-above");
  const clipBelow = slider(
    context,
    "clip_below_percentile",
    "clip below",
    0.1,
    () => 0,
    () => state.get("clip_above_percentile") - CLIP_GAP,
  );
  clipBelow.control.classList.add("igw-clip-below");
  const cleanup = toggle(context, "morphological_cleanup", "cleanup");
  cleanup.control.title = "Grey closing then opening over a window of this many pixels";
  const structureBox = numberBox(1, MAX_STRUCTURE);
  const structure = fields.register("structure", field("window (px)", structureBox), (value) => {
    structureBox.value = String(value);
  });
  onEntry(scope, structureBox, () => fields.enterWhole("structure", 1, MAX_STRUCTURE));
  const outlines = toggle(context, "outlines", "outlines");
  outlines.control.classList.add("igw-outlines");
  const share = slider(
    context,
    "outlines_component_percentage",
    "outlined area",
    1,
    () => 0,
    () => 100,
  );
  const overlay = toggle(context, "overlay", "on the image");
  // The patch view: a ViT's patch side sums the map per token; 0 draws every pixel.
  const patchBox = numberBox(0, MAX_PATCH);
  const patch = fields.register("patch", field("patch (px)", patchBox), (value) => {
    patchBox.value = String(value);
  });
  patch.control.classList.add("igw-patch");
  patch.control.title =
    "Sum the attribution over squares of this many pixels (a vision transformer's patches) " +
    "and draw each square in one colour; 0 draws every pixel";
  onEntry(scope, patchBox, () => fields.enterWhole("patch", 0, MAX_PATCH));
  const colourControls = colours(context);
  root.append(
    ...[
      style,
      polarity,
      clipAbove,
      clipBelow,
      cleanup,
      structure,
      outlines,
      share,
      overlay,
      patch,
    ].map((part) => part.element),
    colourControls.element,
  );

  const show = (): void => {
    for (const key of ModelState.renderKeys) {
      fields.show(key);
    }
    structureBox.disabled = !state.get("morphological_cleanup");
    share.control.toggleAttribute("disabled", !state.get("outlines"));
    colourControls.show();
  };
  state.listen(scope, ModelState.renderKeys, show);
  show();
  return root;
}
