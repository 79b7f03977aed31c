// The header: the predicted class, the class menu ("Explain") and the class
// it is contrasted with ("against": score(class) − score(against) is then
// explained), the completeness error (flagged above 5 %, with the remedy one click away),
// what the computation took, and a sentence when the score falls along the
// path (with the polarity that shows it). Class names are model text: they
// go in as textContent only.

import { formatNumber, formatPercent, isolate } from "../format";
import { AUTO_STEPS_METHODS } from "../generated";
import type { SyncedState } from "../state";
import { button, type Component, element, field, Scope } from "./dom";

/** Δ above this is flagged: the integral is too coarse for the attributions to add up. */
const HIGH_DELTA = 0.05;

export function createHeader(state: SyncedState): Component {
  const scope = new Scope();
  const root = element("div", "igw-header");
  const predicted = element("span", "igw-predicted");
  const classSelect = element("select", "igw-class");
  const classField = field("Explain", classSelect);
  const againstSelect = element("select", "igw-against");
  againstSelect.title =
    "Contrast with another class: explain score(class) − score(against), " +
    "why the model prefers the class to this one.";
  const againstField = field("against", againstSelect);
  const delta = element("span", "igw-delta");
  delta.title =
    "Completeness error: |sum of attributions − (score at image − score at baseline)|, " +
    "relative to the score difference. Small is good; raise the steps if it is large.";
  const autoSteps = button("auto steps", "igw-auto-steps");
  autoSteps.title =
    "Recompute with steps 'auto': the grid doubles until Δ is within the tolerance (1 %).";
  const details = element("span", "igw-details");
  const falling = element("div", "igw-falling");
  const fallingText = element("span", "igw-falling-text");
  const showNegative = button("show what lowered it", "igw-show-negative");
  showNegative.title = "Set polarity to negative: the pixels that pulled the score down.";
  falling.append(fallingText, showNegative);
  root.append(
    predicted,
    classField.element,
    againstField.element,
    delta,
    autoSteps,
    details,
    falling,
  );

  const showClasses = (): void => {
    classSelect.replaceChildren(
      ...state.get("classes").map(([index, name, score]) => {
        const option = element("option");
        option.value = String(index);
        option.text = `${isolate(name)} (${formatNumber(score)})`;
        return option;
      }),
    );
    classSelect.value = String(state.get("target"));
    const none = element("option", undefined, "none");
    none.value = "";
    againstSelect.replaceChildren(
      none,
      ...state
        .get("classes")
        .filter(([index]) => index !== state.get("target"))
        .map(([index, name]) => {
          const option = element("option");
          option.value = String(index);
          option.text = isolate(name);
          return option;
        }),
    );
    const against = state.get("against");
    againstSelect.value = against === null ? "" : String(against);
  };

  const showSummary = (): void => {
    const summary = state.get("summary");
    predicted.replaceChildren(
      element("span", "igw-field-name", "Predicted"),
      element("strong", "igw-predicted-name", isolate(summary.predicted_label)),
      element("span", "igw-score", formatNumber(summary.predicted_score)),
    );
    // Only integrated gradients has a completeness error.
    delta.hidden = summary.delta === null;
    const high = summary.delta !== null && summary.delta > HIGH_DELTA;
    if (summary.delta !== null) {
      // A contrast's attributions add up to the change of the difference of two scores.
      // A region target's add up to the change of the class's scores reduced over the region.
      const difference =
        summary.against !== null
          ? ` of score(${isolate(summary.label)}) − score(${isolate(summary.against_label)})`
          : summary.region
            ? ` of ${summary.region} of score(${isolate(summary.label)})`
            : "";
      delta.textContent =
        `completeness error Δ ${formatPercent(100 * summary.delta)}${difference}` +
        (high ? " — too coarse: the attributions do not add up" : "");
      delta.classList.toggle("igw-delta-high", high);
    }
    // The remedy, where it applies: a rule that refines itself, not already chosen.
    autoSteps.hidden = !(
      high &&
      (AUTO_STEPS_METHODS as readonly string[]).includes(summary.method) &&
      state.get("steps") !== "auto"
    );
    falling.hidden = summary.falling_note === "";
    fallingText.textContent = summary.falling_note;
    showNegative.hidden = state.get("polarity") !== "positive";
    const reduced =
      summary.display_factor > 1 ? ` · shown at 1/${summary.display_factor} resolution` : "";
    // Integrated gradients with its quadrature rule ("Integrated gradients (trapezoid)").
    const rule = summary.method === "" ? "" : ` (${summary.method})`;
    const methods = [`${summary.explainer_title}${rule}`, summary.compare_title]
      .filter((text) => text !== "")
      .join(" and ");
    const points = `${summary.points_used} ${summary.points_used === 1 ? "point" : "points"}`;
    details.textContent = `${points} · ${methods} · ${summary.elapsed_s.toFixed(2)} s${reduced}`;
  };

  const showStatus = (): void => {
    classSelect.disabled = state.get("computing") || !state.computeEnabled;
    againstSelect.disabled = classSelect.disabled;
    autoSteps.disabled = classSelect.disabled;
  };

  scope.on(classSelect, "change", () => {
    const target = Number(classSelect.value);
    // A class cannot be contrasted with itself: choosing the "against" class drops the contrast.
    if (state.get("against") === target) {
      state.set("against", null);
    }
    state.commit("target", target);
  });
  scope.on(againstSelect, "change", () =>
    state.commit("against", againstSelect.value === "" ? null : Number(againstSelect.value)),
  );
  state.listen(scope, ["classes", "target", "against"], showClasses);
  scope.on(autoSteps, "click", () => {
    state.commit("steps", "auto");
    state.send({ type: "compute" });
  });
  scope.on(showNegative, "click", () => state.commit("polarity", "negative"));
  state.listen(scope, ["summary", "steps", "polarity"], showSummary);
  state.listen(scope, ["computing"], showStatus);
  showClasses();
  showSummary();
  showStatus();
  return { element: root, dispose: () => scope.dispose() };
}
