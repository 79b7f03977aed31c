// @vitest-environment happy-dom
// Each part of the view cleans up after itself: dispose removes every model
// listener it added, and its controls no longer touch the model.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SyncedState } from "../src/state";
import { mountView } from "../src/view";
import { createControls } from "../src/view/controls";
import { type Component, isolateKeyboard, Scope } from "../src/view/dom";
import { createHeader } from "../src/view/header";
import { createMessages } from "../src/view/messages";
import { createPanels } from "../src/view/panels";
import { contextOf, recordCanvases, restoreCanvases, spiedModel } from "./fixtures";

const PARTS: [string, (state: SyncedState) => Component][] = [
  ["header", createHeader],
  ["controls", createControls],
  ["messages", createMessages],
  ["panels", (state) => createPanels(state, () => {})],
];

/** Fire every event a user can cause on every control and canvas under `root`. */
function useEverything(root: HTMLElement): void {
  for (const node of root.querySelectorAll<HTMLElement>("input, select, button, canvas")) {
    if (node instanceof HTMLInputElement && node.type !== "color") {
      node.value = node.type === "checkbox" ? node.value : "7";
      node.checked = !node.checked;
    }
    for (const type of ["input", "change", "click", "pointermove", "pointerleave"]) {
      node.dispatchEvent(new Event(type, { bubbles: true }));
    }
    node.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
  }
}

beforeEach(recordCanvases);
afterEach(() => {
  restoreCanvases();
  document.body.replaceChildren();
});

describe("every part of the view cleans up", () => {
  for (const [name, create] of PARTS) {
    it(`${name}: dispose removes its listeners and its controls go quiet`, async () => {
      const { model, added, removed, saves, sends, sets } = spiedModel();
      const part = create(new SyncedState(model, true));
      document.body.append(part.element);
      expect(added.length).toBeGreaterThan(0);
      part.dispose();
      expect(removed).toEqual(added.slice().reverse());
      sets.mockClear();
      useEverything(part.element);
      expect(sets).not.toHaveBeenCalled();
      expect(saves).not.toHaveBeenCalled();
      expect(sends).not.toHaveBeenCalled();
      // Model changes no longer reach it: nothing is redrawn.
      const canvases = [...part.element.querySelectorAll("canvas")];
      const frames = canvases.map((canvas) => contextOf(canvas).frames.length);
      model.set("overlay", false);
      model.set("error", "steps: no");
      await Promise.resolve();
      expect(canvases.map((canvas) => contextOf(canvas).frames.length)).toEqual(frames);
    });
  }

  it("the whole view: its cleanup disposes every part", async () => {
    const { model, added, removed, sets, saves, sends } = spiedModel();
    const el = document.createElement("div");
    document.body.append(el);
    const dispose = mountView(model, el, { computeEnabled: true });
    expect(added.length).toBeGreaterThan(30);
    dispose();
    expect(new Set(removed.map(([event, handler]) => `${event}:${String(handler)}`)).size).toBe(
      new Set(added.map(([event, handler]) => `${event}:${String(handler)}`)).size,
    );
    expect(removed).toHaveLength(added.length);
    for (const entry of added) {
      expect(removed).toContainEqual(entry);
    }
    sets.mockClear();
    useEverything(el);
    expect(sets).not.toHaveBeenCalled();
    expect(saves).not.toHaveBeenCalled();
    expect(sends).not.toHaveBeenCalled();
  });

  it("a Scope undoes its listeners and cleanups once, in reverse order", () => {
    const scope = new Scope();
    const order: string[] = [];
    const target = document.createElement("button");
    let clicks = 0;
    scope.on(target, "click", () => clicks++);
    scope.add(() => order.push("first"));
    scope.add(() => order.push("second"));
    target.click();
    scope.dispose();
    scope.dispose();
    target.click();
    expect(clicks).toBe(1);
    expect(order).toEqual(["second", "first"]);
  });

  it("keyboard isolation marks controls added later, when they take focus", () => {
    const scope = new Scope();
    const root = document.createElement("div");
    document.body.append(root);
    isolateKeyboard(root, scope);
    const late = document.createElement("input");
    root.append(late);
    late.focus();
    expect(late.dataset.lmSuppressShortcuts).toBe("true");
    scope.dispose();
    const later = document.createElement("select");
    root.append(later);
    later.focus();
    expect(later.dataset.lmSuppressShortcuts).toBeUndefined();
  });
});
