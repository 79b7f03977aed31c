// A model that lives only in the page: the standalone HTML export uses it in
// place of a kernel-backed anywidget model. Changes notify listeners as
// anywidget's model does; nothing is ever sent anywhere.

import type { AnyModel } from "@anywidget/types";

// biome-ignore lint/suspicious/noExplicitAny: the signature AnyModel declares for its listeners.
type Handler = (...args: any[]) => void;

export class LocalModel<T extends Record<string, unknown>> implements AnyModel<T> {
  private readonly state: T;
  private readonly handlers = new Map<string, Set<Handler>>();

  readonly widget_manager = {
    get_model: (): Promise<never> =>
      Promise.reject(new Error("a standalone page has no other widget models")),
  };

  constructor(state: T) {
    this.state = { ...state };
  }

  get<K extends keyof T>(key: K): T[K] {
    return this.state[key];
  }

  set<K extends keyof T>(key: K, value: T[K]): void {
    if (this.state[key] === value) {
      return;
    }
    this.state[key] = value;
    for (const handler of this.handlers.get(`change:${String(key)}`) ?? []) {
      handler();
    }
  }

  on(eventName: string, callback: Handler): void {
    const set = this.handlers.get(eventName) ?? new Set<Handler>();
    set.add(callback);
    this.handlers.set(eventName, set);
  }

  off(eventName?: string | null, callback?: Handler | null): void {
    if (eventName == null) {
      this.handlers.clear();
    } else if (callback == null) {
      this.handlers.delete(eventName);
    } else {
      this.handlers.get(eventName)?.delete(callback);
    }
  }

  save_changes(): void {}

  send(): void {}
}
