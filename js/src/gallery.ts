// anywidget entry of ig_widget.Gallery (built to ig_widget/static/gallery.js):
// a virtualised grid of thumbnails (input and IG picture) over a dataset's
// table, assembled from parts by job, each with its listeners in one Scope:
// the toolbar (gallery/toolbar.ts: sorting and filtering, which run in the
// kernel), the view's own display controls (view/display.ts), the grid
// (gallery/grid.ts), the clusters' mean maps when the Gallery has clusters
// (gallery/clusters.ts) and the three-panel view of the chosen image
// (gallery/detail.ts). Every text from the table or the user goes in through
// textContent.

import type { AnyModel, Host, Render } from "@anywidget/types";
import { createClusterStrip } from "./gallery/clusters";
import { createDetail } from "./gallery/detail";
import { createGrid } from "./gallery/grid";
import type { GalleryState } from "./gallery/model";
import { createToolbar } from "./gallery/toolbar";
import { DISPLAY_TRAITS } from "./generated";
import { keyLegend } from "./render";
import { ModelState } from "./state";
import { createDisplayControls } from "./view/display";
import { element, isolateKeyboard, passLostFocus, Scope } from "./view/dom";
import { Fields } from "./view/fields";
import { showLegend } from "./view/key";

/** Why the Gallery's key has no numbers. */
export const GALLERY_SCALE_NOTE =
  "Each picture explains its own class and is scaled to its own strongest pixels: " +
  "the same colour in two pictures can stand for different amounts.";

export {
  CACHE_LIMIT,
  formatPercentage,
  indicesOf,
  ThumbnailCache,
  visibleRows,
} from "./gallery/grid";
export type { Caption, ColumnSpec, Filter, GalleryState } from "./gallery/model";
export { OPERATORS } from "./gallery/toolbar";

export function mountGallery(
  model: AnyModel<GalleryState>,
  el: HTMLElement,
  host: Host | null,
): () => void {
  const scope = new Scope();
  const state = new ModelState<GalleryState>(model);
  const root = element("div", "igg");
  root.dataset.requested = "0";

  const toolbar = createToolbar(model, scope);
  // The view's own display controls, wrapped as in the view (.igw > .igw-controls),
  // whose styles they take.
  const fields = new Fields(state);
  const display = element("div", "igw igg-display");
  const controls = element("div", "igw-controls");
  controls.append(createDisplayControls(state, fields, scope));
  // What the colours mean, in the view's key without its numbers.
  const key = element("div", "igw-key igg-key");
  const keyRows = element("div", "igw-key");
  key.append(keyRows, element("p", "igw-description", GALLERY_SCALE_NOTE));
  const showGalleryKey = (): void => showLegend(keyRows, keyLegend(state.renderOptions()));
  display.append(controls, key);
  const errorBox = element("div", "igg-error");
  errorBox.setAttribute("role", "alert");
  const showError = (local: string): void => {
    const message = [model.get("error"), local].filter(Boolean).join("\n");
    errorBox.textContent = message;
    errorBox.hidden = message === "";
  };

  const strip = createClusterStrip(model, state, scope, toolbar, showError);
  const grid = createGrid(model, state, scope, root, {
    open: (index) => detail.request(index),
    close: () => {
      const open = detail.open;
      if (open) detail.close();
      return open;
    },
    showError,
  });
  // The detail's controls are about to go: if one has focus, it goes back to the grid.
  const keepFocus = (): void => {
    // In marimo the widget lives in a shadow root, whose own activeElement is the one to ask.
    const active = (root.getRootNode() as Document | ShadowRoot).activeElement;
    if (active === null || active === document.body || detail.element.contains(active)) {
      grid.focus();
    }
  };
  const detail = createDetail(model, host, scope, grid.captionOf, keepFocus, grid.schedule);

  root.append(
    toolbar.element,
    display,
    errorBox,
    strip.element,
    grid.element,
    grid.empty,
    detail.element,
  );
  el.replaceChildren(root);

  const listen = (keys: readonly string[], handler: () => void): void =>
    state.listen(scope, keys, handler);
  listen(DISPLAY_TRAITS, () => {
    grid.schedule();
    strip.draw();
    showGalleryKey();
  });
  listen(["clusters", "cluster_rgb", "cluster_maps", "thumbnail_size"], strip.show);
  listen(["filters"], strip.draw);
  listen(["columns", "sort_by", "descending", "filters", "order", "total"], toolbar.show);
  listen(["order"], grid.takeOrder);
  listen(["class_names"], () => {
    toolbar.show();
    strip.show();
    grid.redraw();
  });
  listen(["error"], () => {
    showError("");
    // A refused display option (the window size) is marked at its control.
    fields.heard(model.get("error"));
  });
  listen(["detail"], () => void detail.show());
  listen(["selected"], grid.schedule);

  toolbar.show();
  strip.show();
  showGalleryKey();
  grid.takeOrder();
  showError("");
  void detail.show();
  isolateKeyboard(root, scope);
  passLostFocus(root, scope);
  return () => scope.dispose();
}

const render: Render<GalleryState> = ({ model, el, host }) => mountGallery(model, el, host ?? null);

export default { render };
