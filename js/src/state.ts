// The synced state: typed access to the widget model (a kernel-backed
// anywidget model, or the standalone page's LocalModel). Its types come from
// the Python traits (generated.ts). Every listener a part of the view adds
// goes through `listen` with that part's Scope, so disposing the part
// removes exactly its listeners.

import type { AnyModel } from "@anywidget/types";
import { isolate } from "./format";
import type { Binary, RenderOptions, WidgetState } from "./generated";
import { DISPLAY_TRAITS, RENDER_DEFAULTS, TRAIT_OF_OPTION } from "./generated";
import type { Scope } from "./view/dom";

export type { Binary, PathData, Summary, WidgetState } from "./generated";

const RENDER_OPTIONS = Object.keys(RENDER_DEFAULTS) as (keyof RenderOptions)[];

export type DisplayKey = (typeof DISPLAY_TRAITS)[number];

/** The trait that holds a render option (most have the option's name). */
export function traitOf(option: keyof RenderOptions): DisplayKey {
  return ((TRAIT_OF_OPTION as Record<string, string>)[option] ?? option) as DisplayKey;
}

export function bytesOf(value: Binary): Uint8Array {
  if (value instanceof ArrayBuffer) {
    return new Uint8Array(value);
  }
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

export function floatsOf(value: Binary): Float32Array {
  const bytes = bytesOf(value);
  // A Float32Array view needs 4-byte alignment; buffers from the comm may not have it.
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
}

/** The display options' traits: every widget that draws pictures (view, Gallery) has them. */
export type DisplayTraits = Pick<WidgetState, DisplayKey>;

/**
 * Typed access to a model with the display traits: the view's (SyncedState)
 * and the Gallery's. Every listener goes through `listen` with a Scope.
 */
export class ModelState<S extends DisplayTraits> {
  /** The traits of the render options, in igw.render's order. */
  static readonly renderKeys: readonly string[] = DISPLAY_TRAITS;

  constructor(readonly model: AnyModel<S>) {}

  get<K extends keyof S & string>(key: K): S[K] {
    return this.model.get(key);
  }

  /** Change a value here only (the view redraws); `commit` also sends it to the kernel. */
  set<K extends keyof S & string>(key: K, value: S[K]): void {
    this.model.set(key, value);
  }

  commit<K extends keyof S & string>(key: K, value: S[K]): void {
    this.model.set(key, value);
    this.model.save_changes();
  }

  /** Send the values set with `set` to the kernel. */
  save(): void {
    this.model.save_changes();
  }

  send(message: { type: string }): void {
    this.model.send(message);
  }

  /** Call `handler` when any of `keys` changes, until `scope` is disposed. */
  listen(scope: Scope, keys: readonly string[], handler: () => void): void {
    for (const key of keys) {
      const event = `change:${key}`;
      this.model.on(event, handler);
      scope.add(() => this.model.off(event, handler));
    }
  }

  renderOptions(): RenderOptions {
    const options = { ...RENDER_DEFAULTS };
    for (const option of RENDER_OPTIONS) {
      (options as Record<string, unknown>)[option] = this.model.get(traitOf(option));
    }
    return options;
  }
}

/** The view's state: the display traits and everything else a computation shows. */
export class SyncedState extends ModelState<WidgetState> {
  constructor(
    model: AnyModel<WidgetState>,
    /** False in the standalone export: there is no kernel to compute with. */
    readonly computeEnabled: boolean,
  ) {
    super(model);
  }

  /** The title of the attribution method `name` as the method menu shows it. */
  methodTitle(name: string): string {
    const entry = this.get("explainer_choices").find(([candidate]) => candidate === name);
    return entry === undefined ? name : entry[1];
  }

  /**
   * What the shown result explains, its names isolated: "cat", or "cat − dog" for a
   * contrast (the score of cat minus the score of dog).
   */
  explainedLabel(): string {
    const summary = this.get("summary");
    const label = isolate(summary.label);
    return summary.against === null ? label : `${label} − ${isolate(summary.against_label)}`;
  }

  /** The label of class `index` as the class menu shows it ("class 3" without names). */
  classLabel(index: number): string {
    const entry = this.get("classes").find(([candidate]) => candidate === index);
    return entry === undefined ? `class ${index}` : entry[1];
  }
}
