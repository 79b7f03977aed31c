// The controls: display options (display.ts, redrawn in the browser at once)
// and compute options (applied with Compute). Each control has its own label.
// A refused value stays in its control, marked, with the message beside it,
// until the user changes it (fields.ts); the rules the controls follow ("auto" steps only
// with the rules that take them, runs only with random baselines) come from
// the Python modules that own them (generated.ts).

import {
  AUTO_STEPS_METHODS,
  BASELINE_METHODS,
  MAX_STEPS,
  QUADRATURE_METHODS,
  RANDOM_BASELINES,
  STABILITY_METHODS,
  STEPS_METHODS,
  type WidgetState,
} from "../generated";
import type { SyncedState } from "../state";
import { createDisplayControls } from "./display";
import {
  button,
  type Component,
  canHoldFocus,
  checkbox,
  element,
  type Field,
  field,
  fillSelect,
  numberBox,
  Scope,
  select,
  setHint,
  uniqueId,
} from "./dom";
import { Fields, onEntry } from "./fields";

type Key = keyof WidgetState & string;

export interface Controls extends Component {
  /** An error from the kernel or the renderer: marks the control it names. */
  heardError(message: string): void;
  /** The messages shown beside controls now (the message area leaves them out). */
  messagesAtFields(): Set<string>;
}

/** A menu for the compute option `key`, labelled `name`; a choice is entered at once. */
function menu(fields: Fields, scope: Scope, key: Key, name: string, className: string): Field {
  const node = select([]);
  node.classList.add(className);
  const target = fields.register(key, field(name, node), (value) => {
    node.value = String(value);
  });
  scope.on(node, "change", () => fields.enter(key, node.value, node.value));
  return target;
}

/** The number box of `key` ("steps" or "runs", 1 to MAX_STEPS), typed values checked here. */
function wholeBox(fields: Fields, scope: Scope, key: "steps" | "runs", className: string): Field {
  const box = numberBox(1, MAX_STEPS);
  box.classList.add(className);
  onEntry(scope, box, () => fields.enterWhole(key, 1, MAX_STEPS));
  // "auto" steps leave the box empty (showCompute).
  return fields.register(key, field(key, box), (value) => {
    if (value !== "auto") {
      box.value = String(value);
    }
  });
}

/**
 * Compute and Cancel, the progress, and the notes beside them: options
 * changed since the shown result, or a refused value (`refused` gives the
 * controls' labels) that Compute waits for.
 */
const STABILITY_TITLE =
  "Run the shown method 5 more times (other noise or seeds) and show how much its map varies";

function createStatus(
  state: SyncedState,
  refused: () => string[],
  scope: Scope,
): { elements: HTMLElement[]; show: () => void } {
  const computeButton = button("Compute", "igw-compute-button");
  const stabilityButton = button("Stability", "igw-stability-button");

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
  // The model-randomisation check of the shown result, drawn under the panels (sanity.ts).
  const sanityButton = button("Sanity check", "igw-sanity-button");
  sanityButton.title =
    "Recompute the shown map as the model's layers become random, top first (on a copy)";
  // The button that started the computation: focus returns to it from Cancel.
  let started = computeButton;
  for (const [starter, type] of [
    [computeButton, "compute"],
    [stabilityButton, "stability"],
    [sanityButton, "sanity"],
  ] as const) {
    scope.on(starter, "click", () => {
      started = starter;
      state.send({ type });
    });
  }
  scope.on(cancelButton, "click", () => state.send({ type: "cancel" }));
  const buttons = [computeButton, stabilityButton, sanityButton, cancelButton];
  const show = (): void => {
    // A button disabled or hidden while it has focus hands it on: to Cancel while a
    // computation runs, back to the button that started it after.
    const focused = buttons.find((node) => node.matches(":focus"));
    const computing = state.get("computing");
    const [done, total] = state.get("progress");
    progress.hidden = !computing;
    progressText.hidden = !computing;
    cancelButton.hidden = !computing;
    const names = refused();
    computeButton.disabled = computing || names.length > 0;
    const summary = state.get("summary");
    const seeded = (STABILITY_METHODS as readonly string[]).includes(summary.explainer);
    stabilityButton.disabled = computing || !seeded;
    stabilityButton.title = seeded
      ? STABILITY_TITLE
      : `${summary.explainer_title} has no seed to vary: its runs would be identical`;
    sanityButton.disabled = computing;
    blockedNote.textContent =
      names.length > 0 ? `Compute waits: correct ${names.join(" and ")} first` : "";
    blockedNote.hidden = names.length === 0 || computing;
    progress.max = Math.max(total, 1);
    progress.value = done;
    // One Compute may run several computations (two methods, their curves): say which.
    const stage = state.get("progress_stage");
    const counted = total > 0 ? `${done} / ${total} points` : "starting…";
    progressText.textContent = stage === "" ? counted : `${stage} · ${counted}`;
    const stale = state.get("stale");
    staleNote.hidden = !stale || computing;
    computeButton.classList.toggle("igw-attention", stale);
    if (focused !== undefined && !canHoldFocus(focused)) {
      (computing ? [cancelButton] : [started, computeButton]).find(canHoldFocus)?.focus();
    }
  };
  const elements = [
    computeButton,
    stabilityButton,
    sanityButton,
    cancelButton,
    blockedNote,
    progress,
    progressText,
    staleNote,
  ];
  return { elements, show };
}

export function createControls(state: SyncedState): Controls {
  const scope = new Scope();
  const fields = new Fields(state, () => status.show());
  const root = element("div", "igw-controls");

  const display = createDisplayControls(state, fields, scope);

  // -- compute options ----------------------------------------------------------
  const compute = element("fieldset", "igw-group igw-compute");
  compute.append(element("legend", undefined, "Compute"));
  const explainer = menu(fields, scope, "explainer", "attribution", "igw-explainer");
  const compare = menu(fields, scope, "compare", "compare with", "igw-compare");
  const explainerSelect = explainer.control as HTMLSelectElement;
  const compareSelect = compare.control as HTMLSelectElement;
  const steps = wholeBox(fields, scope, "steps", "igw-steps");
  const stepsBox = steps.control as HTMLInputElement;
  const autoBox = checkbox();
  autoBox.classList.add("igw-auto");
  const auto = field("auto steps", autoBox);
  const baseline = menu(fields, scope, "baseline", "baseline", "igw-baseline");
  const baselineSelect = baseline.control as HTMLSelectElement;
  const runs = wholeBox(fields, scope, "runs", "igw-runs");
  const runsBox = runs.control as HTMLInputElement;
  const method = menu(fields, scope, "method", "method", "igw-method");
  const methodSelect = method.control as HTMLSelectElement;
  const status = createStatus(state, () => fields.refusedNames(), scope);
  compute.append(
    explainer.element,
    compare.element,
    steps.element,
    auto.element,
    baseline.element,
    runs.element,
    method.element,
    ...status.elements,
  );
  if (!state.computeEnabled) {
    compute.disabled = true;
    compute.title = "A static export: recomputing needs the notebook and its kernel";
  }

  scope.on(autoBox, "change", () => {
    if (autoBox.checked) {
      fields.enter("steps", "auto", "auto");
    } else {
      // Back to a number: the one "auto" settled on, shown before anything runs.
      const settled = state.get("summary").steps;
      stepsBox.value = String(settled);
      fields.enter("steps", settled, String(settled));
    }
  });

  root.append(display, compute);

  // -- showing the model ----------------------------------------------------------
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
      fields.show(key);
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
  state.listen(scope, ["computing", "progress", "progress_stage", "stale", "summary"], status.show);
  showCompute();
  status.show();

  return {
    element: root,
    heardError: (message: string) => fields.heard(message),
    messagesAtFields: () => fields.drafts.messages(),
    dispose: () => scope.dispose(),
  };
}
