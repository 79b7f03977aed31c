// The three-panel view of the chosen image, below the grid: the kernel makes
// it (an IGWidget) when asked to open an image, and the Gallery renders it
// through anywidget's host. Opening and closing show at once; a host without
// widget references (marimo) shows the title only. A comparison's gallery
// opens two views, store a's left of store b's, each under its store's name.

import type { Host } from "@anywidget/types";
import { isolate } from "../format";
import { element, type Scope } from "../view/dom";
import type { Caption, GalleryModel } from "./model";

export interface Detail {
  readonly element: HTMLElement;
  readonly open: boolean;
  /** Ask the kernel for image `index`'s view. */
  request(index: number): void;
  /** Ask the kernel to close the view, and hide it now. */
  close(): void;
  /** Show the view the model names (or none). */
  show(): Promise<void>;
}

/**
 * The detail view of `model`. `captionOf` gives an image's caption when the
 * grid has it; `closing` runs before the view's controls go, while one of
 * them may still have the focus; `shown` after the view changed size.
 */
export function createDetail(
  model: GalleryModel,
  host: Host | null,
  scope: Scope,
  captionOf: (index: number) => Caption | undefined,
  closing: () => void,
  shown: () => void,
): Detail {
  const root = element("section", "igg-detail");
  const header = element("div", "igg-detail-header");
  const title = element("span", "igg-detail-title");
  const closeButton = element("button", "igg-close", "Close");
  closeButton.type = "button";
  header.append(title, closeButton);
  const body = element("div", "igg-detail-body");
  root.append(header, body);
  root.hidden = true;
  let controller: AbortController | null = null;
  scope.add(() => controller?.abort());

  const hide = (): void => {
    controller?.abort();
    controller = null;
    if (!root.hidden) {
      closing();
    }
    root.hidden = true;
    body.replaceChildren();
  };

  const detail: Detail = {
    element: root,
    get open() {
      return !root.hidden;
    },
    request(index: number): void {
      if (index === undefined || index < 0) {
        return;
      }
      root.hidden = false;
      title.textContent = `Image #${index}: opening…`;
      model.send({ type: "open", index });
    },
    close(): void {
      model.send({ type: "close" });
      hide();
    },
    async show(): Promise<void> {
      controller?.abort();
      controller = null;
      const reference = model.get("detail");
      const index = model.get("selected");
      if (!reference || index < 0) {
        hide();
        shown();
        return;
      }
      root.hidden = false;
      const caption = captionOf(index);
      const source = caption ? ` · ${isolate(caption.source)}` : "";
      title.textContent = `Image #${index}${source} · ${model.get("live") ? "live" : "stored"}`;
      if (host === null) {
        return;
      }
      const child = new AbortController();
      controller = child;
      const other = model.get("detail_a");
      const references = other ? [other, reference] : [reference];
      const widgets = await Promise.all(references.map((r) => host.getWidget(r)));
      if (child.signal.aborted) {
        return;
      }
      const containers = widgets.map(() => element("div", "igg-detail-widget"));
      if (containers.length === 1) {
        body.replaceChildren(...containers);
      } else {
        const names = model.get("compared_names");
        const pair = element("div", "igg-detail-pair");
        containers.forEach((container, i) => {
          const side = element("div", "igg-detail-side");
          side.append(element("div", "igg-detail-name", names[i] ?? (i ? "b" : "a")), container);
          pair.append(side);
        });
        body.replaceChildren(pair);
      }
      await Promise.all(
        widgets.map((widget, i) => widget.render({ el: containers[i], signal: child.signal })),
      );
      shown();
    },
  };
  scope.on(closeButton, "click", () => detail.close());
  // Escape anywhere in the detail view closes it, unless a control there used the key.
  scope.on<KeyboardEvent>(root, "keydown", (event) => {
    if (event.key === "Escape" && !event.defaultPrevented) {
      event.preventDefault();
      detail.close();
    }
  });
  return detail;
}
