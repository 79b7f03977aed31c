// Labelled controls whose shown value follows a model, and the values the
// user entered in them: accepted, or refused (by the browser or the kernel)
// and then shown, marked, with the message beside the control until the user
// enters another value there. Shared by the compute controls (controls.ts)
// and the display controls (display.ts) of the view and the Gallery.

import { type Field, markInvalid, type Scope } from "./dom";

type Key = string;

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

/** A control for `key`: its label (`name`), and how to show a model value in it. */
interface Entry {
  key: Key;
  /** The control's label, which its messages use. */
  name: string;
  field: Field;
  write: (value: unknown) => void;
}

/** The model side a Fields needs: read a value, send one. */
export interface FieldModel {
  get(key: string): unknown;
  commit(key: string, value: unknown): void;
}

/**
 * The registered controls of one view and what was entered in them.
 * `changed` runs whenever the set of refused values changes (the Compute
 * button waits while one stands).
 */
export class Fields {
  readonly drafts = new Drafts();
  private readonly entries = new Map<Key, Entry>();

  constructor(
    private readonly model: FieldModel,
    private readonly changed: () => void = () => {},
  ) {}

  /** Show `key`'s model value in `target` with `write` from now on; returns `target`. */
  register(key: Key, target: Field, write: (value: unknown) => void): Field {
    const name = target.element.querySelector(".igw-field-name")?.textContent ?? key;
    this.entries.set(key, { key, name, field: target, write });
    return target;
  }

  /** The label of `key`'s control. */
  name(key: Key): string {
    return this.entries.get(key)?.name ?? key;
  }

  /** Show the model's value of `key`, or the refused text and why. */
  show(key: Key): void {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      return;
    }
    const refusal = this.drafts.refusal(key);
    if (refusal === undefined) {
      entry.write(this.model.get(key));
      markInvalid(entry.field.control, entry.field.message, "");
      return;
    }
    const control = entry.field.control as HTMLInputElement;
    // Left alone when it shows it already: text the browser cannot read as a number
    // reads as "", and writing "" would erase what the user typed.
    if (control.value !== refusal.text) {
      control.value = refusal.text;
    }
    // A kernel's message names the option ("structure: ..."); beside the box, its label does.
    const words = refusal.message.startsWith(`${key}:`)
      ? `${entry.name}:${refusal.message.slice(key.length + 1)}`
      : refusal.message;
    markInvalid(entry.field.control, entry.field.message, words);
  }

  /** The user entered `value` (typed as `text`) for `key`: send it, and show it as sent. */
  enter(key: Key, value: unknown, text: string): void {
    this.drafts.entered(key, text);
    this.model.commit(key, value);
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      markInvalid(entry.field.control, entry.field.message, "");
    }
    this.changed();
  }

  /**
   * The user typed in the number box of `key`: a whole number from `low` to
   * `high` goes to the kernel; anything else stays in the box, refused here.
   */
  enterWhole(key: Key, low: number, high: number): void {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      return;
    }
    const box = entry.field.control as HTMLInputElement;
    const text = box.value;
    const problem = wholeNumberProblem(entry.name, text, low, high, box.validity.badInput);
    if (problem === "") {
      this.enter(key, Number(text.trim()), text);
    } else {
      this.drafts.refuse(key, text, problem);
      this.show(key);
      this.changed();
    }
  }

  /** An error from the kernel or the renderer: marks the control it names. */
  heard(message: string): void {
    const changed = this.drafts.heard(message);
    for (const key of changed) {
      this.show(key);
    }
    if (changed.length > 0) {
      this.changed();
    }
  }

  /** The labels of the controls whose values stand refused. */
  refusedNames(): string[] {
    return this.drafts.refusedKeys().map((key) => this.name(key));
  }
}

/** A number box's PageUp and PageDown move it by this many steps (the arrows by one). */
const PAGE_STEPS = 10;

/**
 * Typed values apply on Enter as well as when the box loses focus (change);
 * PageUp and PageDown change the number by PAGE_STEPS steps and apply it,
 * as a slider's do.
 */
export function onEntry(scope: Scope, node: HTMLInputElement, apply: () => void): void {
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
