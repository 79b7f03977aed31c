// DOM helpers shared by the view's parts: a Scope that owns listeners and
// undoes them on dispose, element and field builders, and the keyboard
// isolation that keeps JupyterLab's notebook shortcuts off the controls.

/** Something a part of the view owns and must undo: listeners, timers, child parts. */
export class Scope {
  private readonly controller = new AbortController();
  private readonly cleanups: (() => void)[] = [];

  /** Aborted on dispose: pass it to addEventListener (`on` does). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get disposed(): boolean {
    return this.controller.signal.aborted;
  }

  /** Listen to `type` on `target` until dispose. */
  on<E extends Event = Event>(
    target: EventTarget,
    type: string,
    handler: (event: E) => void,
    options: AddEventListenerOptions = {},
  ): void {
    target.addEventListener(type, handler as EventListener, { ...options, signal: this.signal });
  }

  /** Run `cleanup` on dispose (in reverse order of adding). */
  add(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  dispose(): void {
    if (this.disposed) {
      return;
    }
    this.controller.abort();
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      cleanup();
    }
  }
}

/** A part of the view: its root element and the cleanup of everything it added. */
export interface Component {
  readonly element: HTMLElement;
  dispose(): void;
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

let lastId = 0;

/** A document-unique id for `aria-*` references between a view's elements. */
export function uniqueId(prefix: string): string {
  lastId += 1;
  return `${prefix}-${lastId}`;
}

/** Elements that take keyboard focus. */
const FOCUSABLE = "input, select, button, textarea, [tabindex]";

/**
 * Keep JupyterLab's and Notebook 7's notebook shortcuts off the widget's
 * controls, so that arrow keys, Home/End and PageUp/PageDown reach them.
 *
 * Lumino matches a keydown against each shortcut's selector by walking from
 * the focused element up to the document, and stops at the first element
 * with `data-lm-suppress-shortcuts`; but the notebook's command-mode
 * shortcuts (ArrowLeft: "move to the heading above, or collapse it",
 * ArrowDown: "next cell") use `.jp-Notebook.jp-mod-commandMode:not(.jp-mod-readWrite) :focus`,
 * which the focused control itself matches before the walk reaches an
 * attribute on the widget's root. So the attribute goes on every control
 * (those present now and, on focus, any added later). Stopping the event's
 * propagation instead would also silence the browser's own handling that
 * other code relies on. ipywidgets' slider is spared because its keyboard
 * handler calls preventDefault, which Lumino respects; native controls do
 * not.
 */
export function isolateKeyboard(root: HTMLElement, scope: Scope): void {
  root.dataset.lmSuppressShortcuts = "true";
  for (const node of root.querySelectorAll<HTMLElement>(FOCUSABLE)) {
    node.dataset.lmSuppressShortcuts = "true";
  }
  scope.on<FocusEvent>(
    root,
    "focusin",
    (event) => {
      const target = event.target;
      if (target instanceof HTMLElement && target.dataset.lmSuppressShortcuts === undefined) {
        target.dataset.lmSuppressShortcuts = "true";
      }
    },
    { capture: true },
  );
}

/** Whether `node` can hold keyboard focus now: in the page, rendered and not disabled. */
export function canHoldFocus(node: HTMLElement): boolean {
  return (
    node.isConnected && !(node as HTMLButtonElement).disabled && node.getClientRects().length > 0
  );
}

/**
 * When a control of `root` loses focus because it was disabled, hidden or
 * removed, give focus to the nearest control before it that can hold it
 * (after it, if none), as the controls stood when it took focus. The browser
 * would send focus to the page's body, and a keyboard user back to the top of
 * the notebook: a button that hides itself when used ("style colours") or a
 * filter chip's remove button would lose the user's place.
 */
export function passLostFocus(root: HTMLElement, scope: Scope): void {
  let order: HTMLElement[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  scope.add(() => clearTimeout(timer));
  scope.on(root, "focusin", () => {
    order = [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((node) => node.tabIndex >= 0);
  });
  scope.on<FocusEvent>(root, "focusout", (event) => {
    const lost = event.target as HTMLElement;
    const position = order.indexOf(lost);
    if (event.relatedTarget !== null || position < 0) {
      return;
    }
    const candidates = [...order.slice(0, position).reverse(), ...order.slice(position + 1)];
    // After the update that took the focus away has finished (Cancel shown, chips rebuilt).
    clearTimeout(timer);
    timer = setTimeout(() => {
      // In marimo the view lives in a shadow root, whose own activeElement is the one to ask.
      const active = (root.getRootNode() as Document | ShadowRoot).activeElement;
      if (canHoldFocus(lost) || (active !== null && active !== root.ownerDocument.body)) {
        return;
      }
      candidates.find(canHoldFocus)?.focus();
    }, 0);
  });
}

/** Show `message` beside a control and mark it invalid; an empty message clears both. */
export function markInvalid(control: HTMLElement, messageNode: HTMLElement, message: string): void {
  messageNode.textContent = message;
  messageNode.hidden = message === "";
  if (message === "") {
    control.removeAttribute("aria-invalid");
  } else {
    control.setAttribute("aria-invalid", "true");
  }
}

/**
 * A labelled control: `<label>` around the control alone, so that its
 * accessible name is exactly `name`; an optional hint and an error message
 * follow it and are referenced by `aria-describedby`.
 */
export interface Field {
  readonly element: HTMLElement;
  readonly control: HTMLElement;
  readonly hint: HTMLElement;
  readonly message: HTMLElement;
}

export function field(name: string, control: HTMLElement, hintText = ""): Field {
  const wrapper = element("span", "igw-field");
  const label = element("label", "igw-field-label");
  label.append(element("span", "igw-field-name", name), control);
  const hint = element("span", "igw-hint", hintText);
  hint.id = uniqueId("igw-hint");
  hint.hidden = hintText === "";
  const message = element("span", "igw-field-error");
  message.id = uniqueId("igw-error");
  message.hidden = true;
  control.setAttribute("aria-describedby", `${hint.id} ${message.id}`);
  wrapper.append(label, hint, message);
  return { element: wrapper, control, hint, message };
}

/** Set a hint's text; an empty text hides it. */
export function setHint(target: Field, text: string): void {
  target.hint.textContent = text;
  target.hint.hidden = text === "";
}

export function select(choices: readonly string[]): HTMLSelectElement {
  const node = element("select");
  fillSelect(node, choices);
  return node;
}

/** Make `choices` the options of `node`, shown as `labels` (the values themselves by default). */
export function fillSelect(
  node: HTMLSelectElement,
  choices: readonly string[],
  labels: readonly string[] = choices,
): void {
  const current = [...node.options];
  if (
    current.length === choices.length &&
    current.every((option, i) => option.value === choices[i] && option.text === labels[i])
  ) {
    return;
  }
  node.replaceChildren(
    ...choices.map((choice, i) => {
      const option = element("option");
      option.value = choice;
      option.text = labels[i];
      return option;
    }),
  );
}

export function range(min: number, max: number, step: number): HTMLInputElement {
  const node = element("input");
  node.type = "range";
  node.min = String(min);
  node.max = String(max);
  node.step = String(step);
  return node;
}

export function checkbox(): HTMLInputElement {
  const node = element("input");
  node.type = "checkbox";
  return node;
}

export function numberBox(min: number, max: number): HTMLInputElement {
  const node = element("input");
  node.type = "number";
  node.min = String(min);
  node.max = String(max);
  node.step = "1";
  node.inputMode = "numeric";
  return node;
}

export function button(text: string, className: string): HTMLButtonElement {
  const node = element("button", `igw-button ${className}`, text);
  node.type = "button";
  return node;
}
