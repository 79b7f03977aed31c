// The controls: display options (redrawn in the browser at once) and compute
// options (applied with Compute). Each control has its own label. A value the
// kernel refuses stays in its control, marked, with the message beside it,
// until the user changes it; the rules the controls follow ("auto" steps only
// with the rules that take them, runs only with random baselines) come from
// the Python modules that own them (generated.ts).

import {
  AUTO_STEPS_METHODS,
  BASELINE_METHODS,
  MAX_STEPS,
  MAX_STRUCTURE,
  POLARITIES,
  QUADRATURE_METHODS,
  RANDOM_BASELINES,
  STEPS_METHODS,
  STYLES,
  type WidgetState,
} from "../generated";
import { polarityColors } from "../render";
import { SyncedState } from "../state";
import {
  button,
  type Component,
  checkbox,
  element,
  type Field,
  field,
  fillSelect,
  markInvalid,
  numberBox,
  range,
  Scope,
  select,
  setHint,
  uniqueId,
} from "./dom";

type Key = keyof WidgetState & string;

/**
 * Why the text of the number box `name` is not a whole number from `low` to
 * `high`, in the box's own words ("steps: a whole number from 1 to 10,000;
 * got -5"); "" when it is. `notANumber`: the browser could not read the
 * typed text as a number (its value is then "").
 */
export function wholeNumberProblem(
  name: string,
  text: string,
  low: number,
  high: number,
  notANumber = false,
): string {
  const trimmed = text.trim();
  if (!notANumber && /^\d+$/.test(trimmed)) {
    const value = Number(trimmed);
    if (value >= low && value <= high) {
      return "";
    }
  }
  const got = notANumber ? "text that is not a number" : trimmed === "" ? "nothing" : trimmed;
  const wanted = `a whole number from ${low.toLocaleString("en-US")} to ${high.toLocaleString("en-US")}`;
  return `${name}: ${wanted}; got ${got}`;
}

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

/**
 * Values the user entered, until the kernel (or the renderer) accepts or
 * refuses them, or the browser refuses them itself (`refuse`). A kernel's
 * refusal names its option first ("steps: expected ..."). A refused text
 * stays in the control with the message beside it until the user enters
 * another value in that control: changes elsewhere never clear it.
 */
export class Drafts {
  private readonly pending = new Map<Key, string>();
  private readonly refused = new Map<Key, { text: string; message: string }>();

  /** The user entered `text` for `key` (and it goes to the kernel). */
  entered(key: Key, text: string): void {
    this.pending.set(key, text);
    this.refused.delete(key);
  }

  /** The browser refused `text` for `key` with `message` (nothing goes to the kernel). */
  refuse(key: Key, text: string, message: string): void {
    this.pending.delete(key);
    this.refused.set(key, { text, message });
  }

  /** The keys whose values stand refused. */
  refusedKeys(): Key[] {
    return [...this.refused.keys()];
  }

  /** An error arrived; returns the keys whose state changed. */
  heard(message: string): Key[] {
    const changed: Key[] = [];
    for (const [key, text] of this.pending) {
      if (message.startsWith(`${key}:`)) {
        this.refused.set(key, { text, message });
        changed.push(key);
      }
    }
    this.pending.clear();
    return changed;
  }

  /** Forget what was entered for `key` (the user took the value back). */
  drop(key: Key): void {
    this.pending.delete(key);
    this.refused.delete(key);
  }

  refusal(key: Key): { text: string; message: string } | undefined {
    return this.refused.get(key);
  }

  messages(): Set<string> {
    return new Set([...this.refused.values()].map((entry) => entry.message));
  }
}

export interface Controls extends Component {
  /** An error from the kernel or the renderer: marks the control it names. */
  heardError(message: string): void;
  /** The messages shown beside controls now (the message area leaves them out). */
  messagesAtFields(): Set<string>;
}

/**
 * A control for `key` whose shown value follows the model unless a refused
 * entry is on show. `read` gives the control's text, `write` shows a value.
 */
interface Entry {
  key: Key;
  /** The control's label, which its messages use. */
  name: string;
  field: Field;
  write: (value: unknown) => void;
}

export function createControls(state: SyncedState): Controls {
  const scope = new Scope();
  const drafts = new Drafts();
  const entries = new Map<Key, Entry>();
  const root = element("div", "igw-controls");

  const show = (entry: Entry): void => {
    const refusal = drafts.refusal(entry.key);
    if (refusal === undefined) {
      entry.write(state.get(entry.key));
      markInvalid(entry.field.control, entry.field.message, "");
    } else {
      const control = entry.field.control as HTMLInputElement;
      // Left alone when it shows it already: text the browser cannot read as a number
      // reads as "", and writing "" would erase what the user typed.
      if (control.value !== refusal.text) {
        control.value = refusal.text;
      }
      markInvalid(entry.field.control, entry.field.message, fieldWords(entry, refusal.message));
    }
  };
  /** A kernel's message names the option ("structure: ..."); beside the box, its label does. */
  const fieldWords = (entry: Entry, message: string): string =>
    message.startsWith(`${entry.key}:`)
      ? `${entry.name}:${message.slice(entry.key.length + 1)}`
      : message;
  const register = (key: Key, target: Field, write: (value: unknown) => void): Field => {
    const name = target.element.querySelector(".igw-field-name")?.textContent ?? key;
    const entry = { key, name, field: target, write };
    entries.set(key, entry);
    return target;
  };
  /** The user entered a value: remember it, send it, and show it as sent. */
  const enter = <K extends Key>(key: K, value: WidgetState[K], text: string): void => {
    drafts.entered(key, text);
    state.commit(key, value);
    const entry = entries.get(key);
    if (entry !== undefined) {
      markInvalid(entry.field.control, entry.field.message, "");
    }
    showStatus();
  };
  /**
   * The user typed in the number box of `key`: a whole number from `low` to
   * `high` goes to the kernel; anything else stays in the box, refused here.
   */
  const enterWhole = (key: "steps" | "runs" | "structure", low: number, high: number): void => {
    const entry = entries.get(key);
    if (entry === undefined) {
      return;
    }
    const box = entry.field.control as HTMLInputElement;
    const text = box.value;
    const problem = wholeNumberProblem(entry.name, text, low, high, box.validity.badInput);
    if (problem === "") {
      enter(key, Number(text.trim()), text);
    } else {
      drafts.refuse(key, text, problem);
      show(entry);
      showStatus();
    }
  };

  // -- display options ----------------------------------------------------------
  const display = element("fieldset", "igw-group igw-display");
  display.append(element("legend", undefined, "Display"));
  const style = register("picture_style", field("style", select(STYLES)), (value) => {
    (style.control as HTMLSelectElement).value = String(value);
  });
  const polarity = register("polarity", field("polarity", select(POLARITIES)), (value) => {
    (polarity.control as HTMLSelectElement).value = String(value);
  });

  // Sliders redraw while they move (set, without a kernel round trip); the
  // kernel hears the value when the move ends (change). The clip sliders
  // keep below < above, which the renderer requires.
  const CLIP_GAP = 0.1;
  const slider = (
    key: "clip_above_percentile" | "clip_below_percentile" | "outlines_component_percentage",
    name: string,
    step: number,
    lowest: () => number,
    highest: () => number,
  ): Field => {
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
    register(key, target, write);
    scope.on(input, "input", () => {
      const value = Math.min(Math.max(Number(input.value), lowest()), highest());
      const rounded = Math.round(value / step) * step;
      const tidy = Number(rounded.toFixed(1));
      write(tidy);
      state.set(key, tidy);
    });
    scope.on(input, "change", () => state.save());
    return target;
  };
  const clipAbove = slider(
    "clip_above_percentile",
    "clip above",
    0.1,
    () => state.get("clip_below_percentile") + CLIP_GAP,
    () => 100,
  );
  clipAbove.control.classList.add("igw-clip-above");
  const clipBelow = slider(
    "clip_below_percentile",
    "clip below",
    0.1,
    () => 0,
    () => state.get("clip_above_percentile") - CLIP_GAP,
  );
  clipBelow.control.classList.add("igw-clip-below");

  const toggle = (key: "morphological_cleanup" | "outlines" | "overlay", name: string): Field => {
    const box = checkbox();
    const target = register(key, field(name, box), (value) => {
      box.checked = Boolean(value);
    });
    scope.on(box, "change", () => state.commit(key, box.checked));
    return target;
  };
  const cleanup = toggle("morphological_cleanup", "cleanup");
  const structureBox = numberBox(1, MAX_STRUCTURE);
  const structure = register("structure", field("window (px)", structureBox), (value) => {
    structureBox.value = String(value);
  });
  cleanup.control.title = "Grey closing then opening over a window of this many pixels";
  const outlines = toggle("outlines", "outlines");
  const share = slider(
    "outlines_component_percentage",
    "outlined area",
    1,
    () => 0,
    () => 100,
  );
  const overlay = toggle("overlay", "on the image");

  const colorInput = (): HTMLInputElement => {
    const node = element("input");
    node.type = "color";
    return node;
  };
  const positiveColor = field("positive colour", colorInput());
  const negativeColor = field("negative colour", colorInput());
  const styleColors = button("style colours", "igw-style-colors");
  styleColors.title = "Use the style's own colours again";
  const showColors = (): void => {
    const colors = polarityColors(state.renderOptions());
    (positiveColor.control as HTMLInputElement).value = toHex(colors.positive);
    (negativeColor.control as HTMLInputElement).value = toHex(colors.negative);
    styleColors.hidden =
      state.get("positive_color") === null && state.get("negative_color") === null;
  };
  for (const [key, target] of [
    ["positive_color", positiveColor],
    ["negative_color", negativeColor],
  ] as const) {
    const input = target.control as HTMLInputElement;
    scope.on(input, "input", () => state.set(key, fromHex(input.value)));
    scope.on(input, "change", () => state.save());
  }
  scope.on(styleColors, "click", () => {
    state.set("positive_color", null);
    state.commit("negative_color", null);
  });
  const colors = element("span", "igw-colors");
  colors.append(positiveColor.element, negativeColor.element, styleColors);
  display.append(
    style.element,
    polarity.element,
    clipAbove.element,
    clipBelow.element,
    cleanup.element,
    structure.element,
    outlines.element,
    share.element,
    overlay.element,
    colors,
  );
  scope.on(style.control, "change", () => {
    const value = (style.control as HTMLSelectElement).value as WidgetState["picture_style"];
    state.commit("picture_style", value);
  });
  scope.on(polarity.control, "change", () => {
    const value = (polarity.control as HTMLSelectElement).value as WidgetState["polarity"];
    state.commit("polarity", value);
  });
  onEntry(scope, structureBox, () => enterWhole("structure", 1, MAX_STRUCTURE));

  // -- compute options ----------------------------------------------------------
  const compute = element("fieldset", "igw-group igw-compute");
  compute.append(element("legend", undefined, "Compute"));
  const explainerSelect = select([]);
  explainerSelect.classList.add("igw-explainer");
  const explainer = register("explainer", field("attribution", explainerSelect), (value) => {
    explainerSelect.value = String(value);
  });
  const compareSelect = select([]);
  compareSelect.classList.add("igw-compare");
  const compare = register("compare", field("compare with", compareSelect), (value) => {
    compareSelect.value = String(value);
  });
  const stepsBox = numberBox(1, MAX_STEPS);
  stepsBox.classList.add("igw-steps");
  const steps = register("steps", field("steps", stepsBox), (value) => {
    if (value !== "auto") {
      stepsBox.value = String(value);
    }
  });
  const autoBox = checkbox();
  autoBox.classList.add("igw-auto");
  const auto = field("auto steps", autoBox);
  const baselineSelect = select([]);
  const baseline = register("baseline", field("baseline", baselineSelect), (value) => {
    baselineSelect.value = String(value);
  });
  const runsBox = numberBox(1, MAX_STEPS);
  runsBox.classList.add("igw-runs");
  const runs = register("runs", field("runs", runsBox), (value) => {
    runsBox.value = String(value);
  });
  const methodSelect = select([]);
  methodSelect.classList.add("igw-method");
  const method = register("method", field("method", methodSelect), (value) => {
    methodSelect.value = String(value);
  });
  const computeButton = button("Compute", "igw-compute-button");
  const cancelButton = button("Cancel", "igw-cancel");
  const progress = element("progress", "igw-progress");
  progress.setAttribute("aria-label", "computation progress");
  const progressText = element("span", "igw-progress-text");
  const staleNote = element("span", "igw-stale", "options changed: Compute applies them");
  // Why Compute is disabled while a refused value stands (a disabled button takes no focus,
  // so the reason is text beside it).
  const blockedNote = element("span", "igw-blocked");
  blockedNote.id = uniqueId("igw-blocked");
  computeButton.setAttribute("aria-describedby", blockedNote.id);
  compute.append(
    explainer.element,
    compare.element,
    steps.element,
    auto.element,
    baseline.element,
    runs.element,
    method.element,
    computeButton,
    cancelButton,
    blockedNote,
    progress,
    progressText,
    staleNote,
  );
  if (!state.computeEnabled) {
    compute.disabled = true;
    compute.title = "A static export: recomputing needs the notebook and its kernel";
  }

  onEntry(scope, stepsBox, () => enterWhole("steps", 1, MAX_STEPS));
  scope.on(autoBox, "change", () => {
    if (autoBox.checked) {
      enter("steps", "auto", "auto");
    } else {
      // Back to a number: the one "auto" settled on, shown before anything runs.
      const settled = state.get("summary").steps;
      stepsBox.value = String(settled);
      enter("steps", settled, String(settled));
    }
  });
  scope.on(baselineSelect, "change", () => {
    const value = baselineSelect.value as WidgetState["baseline"];
    enter("baseline", value, value);
  });
  onEntry(scope, runsBox, () => enterWhole("runs", 1, MAX_STEPS));
  scope.on(methodSelect, "change", () => {
    const value = methodSelect.value as WidgetState["method"];
    enter("method", value, value);
  });
  scope.on(explainerSelect, "change", () => {
    const value = explainerSelect.value as WidgetState["explainer"];
    enter("explainer", value, value);
  });
  scope.on(compareSelect, "change", () => {
    const value = compareSelect.value as WidgetState["compare"];
    enter("compare", value, value);
  });
  scope.on(computeButton, "click", () => state.send({ type: "compute" }));
  scope.on(cancelButton, "click", () => state.send({ type: "cancel" }));

  root.append(display, compute);

  // -- showing the model ----------------------------------------------------------
  const showDisplay = (): void => {
    for (const key of SyncedState.renderKeys) {
      const entry = entries.get(key as Key);
      if (entry !== undefined) show(entry);
    }
    structureBox.disabled = !state.get("morphological_cleanup");
    share.control.toggleAttribute("disabled", !state.get("outlines"));
    showColors();
  };

  const showCompute = (): void => {
    const baselines = [...state.get("baseline_choices")];
    if (state.get("baseline") === "custom") {
      baselines.push("custom");
    }
    fillSelect(baselineSelect, baselines);
    fillSelect(methodSelect, state.get("method_choices"));
    const methods = state.get("explainer_choices");
    fillSelect(
      explainerSelect,
      methods.map(([name]) => name),
      methods.map(([, title]) => title),
    );
    fillSelect(
      compareSelect,
      ["", ...methods.map(([name]) => name)],
      ["off", ...methods.map(([, title]) => title)],
    );
    for (const key of ["steps", "baseline", "runs", "method", "explainer", "compare"] as const) {
      const entry = entries.get(key);
      if (entry !== undefined) show(entry);
    }
    const isAuto = state.get("steps") === "auto";
    const methodTakesAuto = (AUTO_STEPS_METHODS as readonly string[]).includes(state.get("method"));
    autoBox.checked = isAuto;
    stepsBox.disabled = isAuto;
    if (isAuto) {
      stepsBox.value = "";
      stepsBox.placeholder = "auto";
    }
    autoBox.disabled = !methodTakesAuto && !isAuto;
    setHint(auto, methodTakesAuto ? "" : `only with ${AUTO_STEPS_METHODS.join(", ")}`);
    // Rules that cannot take "auto" are not offered while it is on.
    for (const option of methodSelect.options) {
      option.disabled = isAuto && !(AUTO_STEPS_METHODS as readonly string[]).includes(option.value);
    }
    setHint(method, isAuto ? `auto steps: ${AUTO_STEPS_METHODS.join(", ")} only` : "");
    const random = (RANDOM_BASELINES as readonly string[]).includes(state.get("baseline"));
    runsBox.disabled = !random;
    setHint(
      runs,
      random ? "" : `no effect: only ${RANDOM_BASELINES.join(", ")} baselines differ per run`,
    );
    // A method cannot be compared with itself; options no chosen method uses say so.
    for (const option of compareSelect.options) {
      option.disabled = option.value !== "" && option.value === state.get("explainer");
    }
    const chosen = [state.get("explainer"), state.get("compare")].filter((name) => name !== "");
    const unused = (users: readonly string[]): string =>
      chosen.some((name) => users.includes(name))
        ? ""
        : `no effect on ${chosen.map((name) => state.methodTitle(name)).join(" or ")}`;
    setHint(steps, unused(STEPS_METHODS));
    setHint(baseline, unused(BASELINE_METHODS));
    if (!chosen.includes("integrated_gradients")) {
      setHint(runs, unused(["integrated_gradients"]));
    }
    if (!chosen.some((name) => (QUADRATURE_METHODS as readonly string[]).includes(name))) {
      setHint(method, unused(QUADRATURE_METHODS));
    }
  };

  const showStatus = (): void => {
    const computing = state.get("computing");
    const [done, total] = state.get("progress");
    progress.hidden = !computing;
    progressText.hidden = !computing;
    cancelButton.hidden = !computing;
    const refused = drafts.refusedKeys().map((key) => entries.get(key)?.name ?? key);
    computeButton.disabled = computing || refused.length > 0;
    blockedNote.textContent =
      refused.length > 0 ? `Compute waits: correct ${refused.join(" and ")} first` : "";
    blockedNote.hidden = refused.length === 0 || computing;
    progress.max = Math.max(total, 1);
    progress.value = done;
    // One Compute may run several computations (two methods, their curves): say which.
    const stage = state.get("progress_stage");
    const counted = total > 0 ? `${done} / ${total} points` : "starting…";
    progressText.textContent = stage === "" ? counted : `${stage} · ${counted}`;
    const stale = state.get("stale");
    staleNote.hidden = !stale || computing;
    computeButton.classList.toggle("igw-attention", stale);
  };

  state.listen(scope, SyncedState.renderKeys, showDisplay);
  state.listen(
    scope,
    [
      "steps",
      "baseline",
      "runs",
      "method",
      "explainer",
      "compare",
      "baseline_choices",
      "method_choices",
      "explainer_choices",
      "summary",
    ],
    showCompute,
  );
  state.listen(scope, ["computing", "progress", "progress_stage", "stale"], showStatus);
  showDisplay();
  showCompute();
  showStatus();

  return {
    element: root,
    heardError(message: string): void {
      const changed = drafts.heard(message);
      for (const key of changed) {
        const entry = entries.get(key);
        if (entry !== undefined) show(entry);
      }
      if (changed.length > 0) {
        showStatus();
      }
    },
    messagesAtFields: () => drafts.messages(),
    dispose: () => scope.dispose(),
  };
}

/** A number box's PageUp and PageDown move it by this many steps (the arrows by one). */
const PAGE_STEPS = 10;

/**
 * Typed values apply on Enter as well as when the box loses focus (change);
 * PageUp and PageDown change the number by PAGE_STEPS steps and apply it,
 * as a slider's do.
 */
function onEntry(scope: Scope, node: HTMLInputElement, apply: () => void): void {
  scope.on(node, "change", apply);
  scope.on<KeyboardEvent>(node, "keydown", (event) => {
    if (event.key === "Enter") {
      apply();
    } else if (event.key === "PageUp" || event.key === "PageDown") {
      event.preventDefault();
      if (event.key === "PageUp") node.stepUp(PAGE_STEPS);
      else node.stepDown(PAGE_STEPS);
      apply();
    }
  });
}
