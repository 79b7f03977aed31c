// The widget's view, assembled from its parts: the header (predicted and
// explained class), the controls, the messages, and the panels with their
// colour keys, descriptions, readout and path plot. Each part owns its
// listeners and undoes them on dispose; mountView's cleanup disposes them
// all. Display options are redrawn in the browser from the raw maps, with no
// kernel round trip; their values still sync to the kernel so that its
// snapshots match what is shown. Every text from the model or the user goes
// in through textContent.

import type { AnyModel } from "@anywidget/types";
import { SyncedState, type WidgetState } from "./state";
import { createControls } from "./view/controls";
import { type Component, element, isolateKeyboard, passLostFocus, Scope } from "./view/dom";
import { createHeader } from "./view/header";
import { createMessages } from "./view/messages";
import { createPanels } from "./view/panels";
import { createSanityStrip } from "./view/sanity";

export type { WidgetState } from "./state";

export interface ViewOptions {
  /** False in the standalone export: there is no kernel to compute with. */
  computeEnabled: boolean;
}

/**
 * Build the view of `model` inside `el`; returns the cleanup function that
 * removes every listener it added.
 *
 * @example
 * const dispose = mountView(model, document.body, { computeEnabled: false });
 */
export function mountView(
  model: AnyModel<WidgetState>,
  el: HTMLElement,
  options: ViewOptions,
): () => void {
  const state = new SyncedState(model, options.computeEnabled);
  const scope = new Scope();
  const root = element("div", "igw");
  root.dataset.computeEnabled = String(options.computeEnabled);

  const messages = createMessages(state);
  const header = createHeader(state);
  const controls = createControls(state);
  let renderError = "";
  const heard = (): void => {
    for (const message of [state.get("error"), renderError]) {
      controls.heardError(message);
    }
    messages.setShownAtFields(controls.messagesAtFields());
  };
  const panels = createPanels(state, (message) => {
    if (message !== renderError) {
      renderError = message;
      messages.setRenderError(message);
      heard();
    }
  });
  state.listen(scope, ["error"], heard);
  const parts: Component[] = [header, controls, messages, panels, createSanityStrip(state)];
  for (const part of parts) {
    scope.add(() => part.dispose());
  }
  root.append(...parts.map((part) => part.element));
  state.listen(scope, ["computing"], () => {
    root.dataset.computing = String(state.get("computing"));
  });
  root.dataset.computing = String(state.get("computing"));
  el.replaceChildren(root);
  isolateKeyboard(root, scope);
  passLostFocus(root, scope);
  return () => scope.dispose();
}
