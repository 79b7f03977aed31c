// anywidget entry of ig_widget.Gallery (built to ig_widget/static/gallery.js):
// a virtualised grid of thumbnails (input and IG picture) over a dataset's
// table. Only the cells in view exist in the DOM; their thumbnails are asked
// from the kernel as they come into view and arrive as binary buffers (RGB
// bytes and the two IG channel maps), kept in a bounded cache and redrawn here
// by the shared renderer whenever a display option changes. Sorting and
// filtering run in the kernel (pandas); it sends back the order of the images.
// Clicking a cell (or Enter) asks the kernel for that image's three-panel
// view, an IGWidget, which is rendered below the grid through anywidget's host.
// Every text from the table or the user goes in through textContent.

import type { AnyModel, Host, Render } from "@anywidget/types";
import { isolate } from "./format";
import { type Binary, DISPLAY_TRAITS } from "./generated";
import { type RenderOptions, renderMaps } from "./render";
import { bytesOf, ModelState } from "./state";
import { createDisplayControls } from "./view/display";
import { element, isolateKeyboard, Scope } from "./view/dom";
import { Fields } from "./view/fields";

/** [name, kind]: kind is "number", "integer", "class", "boolean" or "text". */
export type ColumnSpec = [string, string];
/** [column, operator, value]. */
export type Filter = [string, string, number | string | boolean];

/** The display options travel as the widget's traits (style as picture_style). */
export interface GalleryState extends Omit<RenderOptions, "style"> {
  [key: string]: unknown;
  picture_style: RenderOptions["style"];
  columns: ColumnSpec[];
  sort_by: string;
  descending: boolean;
  filters: Filter[];
  order: Binary;
  total: number;
  class_names: string[];
  thumbnail_size: [number, number];
  selected: number;
  detail: string | null;
  live: boolean;
  error: string;
}

/** One image's caption values, as the kernel sends them with its thumbnail. */
export interface Caption {
  source: string;
  label: number | null;
  predicted: number;
  target: number;
  score: number;
  delta: number;
  correct: boolean | null;
  mask_share?: number | null;
}

interface Thumbnail {
  rgb: Uint8Array;
  positive: Float32Array;
  negative: Float32Array;
  caption: Caption;
}

interface Cell {
  root: HTMLElement;
  input: HTMLCanvasElement;
  picture: HTMLCanvasElement;
  title: HTMLElement;
  details: HTMLElement;
  position: number;
  drawn: Thumbnail | null;
  drawnOptions: string;
}

export const OPERATORS: Record<string, string[]> = {
  number: ["<", "<=", ">", ">=", "==", "!="],
  integer: ["==", "!=", "<", "<=", ">", ">="],
  class: ["==", "!="],
  boolean: ["=="],
  text: ["contains", "==", "!="],
};
// Thumbnails kept in the browser; the least recently shown go first.
export const CACHE_LIMIT = 800;
// Thumbnails asked for in one message.
const REQUEST_LIMIT = 48;
// Each thumbnail shows in a square of this many CSS pixels (gallery.css).
const PICTURE_SIZE = 96;
const CELL_GAP = 8;
const CAPTION_HEIGHT = 36;

/** The int32 image indices of `order`, copied to an aligned array. */
export function indicesOf(value: Binary): Int32Array {
  const bytes = bytesOf(value).slice();
  return new Int32Array(bytes.buffer, 0, bytes.byteLength / 4);
}

/** A least-recently-used map with a size limit. */
export class ThumbnailCache<T> {
  private readonly entries = new Map<number, T>();

  constructor(readonly limit: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(index: number): T | undefined {
    const value = this.entries.get(index);
    if (value !== undefined) {
      this.entries.delete(index);
      this.entries.set(index, value);
    }
    return value;
  }

  has(index: number): boolean {
    return this.entries.has(index);
  }

  set(index: number, value: T): void {
    this.entries.delete(index);
    this.entries.set(index, value);
    while (this.entries.size > this.limit) {
      const oldest = this.entries.keys().next().value as number;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

/** First and last row (inclusive) to lay out for a scroll position, with `spare` rows around. */
export function visibleRows(
  scrollTop: number,
  viewHeight: number,
  rowHeight: number,
  rows: number,
  spare: number,
): [number, number] {
  if (rows === 0) {
    return [0, -1];
  }
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - spare);
  const last = Math.min(rows - 1, Math.ceil((scrollTop + viewHeight) / rowHeight) + spare);
  return [first, last];
}

/** A number in a caption: percentages for shares, three significant digits otherwise. */
export function formatPercentage(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return "–";
  }
  return `${Number((100 * value).toPrecision(3))}%`;
}

export function mountGallery(
  model: AnyModel<GalleryState>,
  el: HTMLElement,
  host: Host | null,
): () => void {
  const scope = new Scope();
  const listen = (event: string, handler: () => void): void => {
    model.on(event, handler);
    scope.add(() => model.off(event, handler));
  };
  const on = (node: EventTarget, event: string, handler: (event: Event) => void): void => {
    scope.on(node, event, handler);
  };

  const root = element("div", "igg");
  root.dataset.requested = "0";

  // -- toolbar ---------------------------------------------------------------
  const toolbar = element("div", "igg-toolbar");
  const sortSelect = element("select", "igg-sort");
  sortSelect.title = "Sort by this column";
  const directionButton = element("button", "igg-direction");
  directionButton.type = "button";
  const wrongToggle = element("input", "igg-misclassified");
  wrongToggle.type = "checkbox";
  const wrongLabel = element("label", "igg-field");
  wrongLabel.append(wrongToggle, element("span", undefined, "misclassified only"));
  const filterColumn = element("select", "igg-filter-column");
  const filterOperator = element("select", "igg-filter-operator");
  const filterValue = element("input", "igg-filter-value");
  filterValue.size = 8;
  const filterClass = element("select", "igg-filter-class");
  const addFilter = element("button", "igg-add-filter", "Add filter");
  addFilter.type = "button";
  const chips = element("span", "igg-chips");
  const countText = element("span", "igg-count");
  const sortField = element("label", "igg-field");
  sortField.append(element("span", "igg-field-name", "Sort by"), sortSelect, directionButton);
  const filterField = element("span", "igg-field igg-filter");
  filterField.append(
    element("span", "igg-field-name", "Filter"),
    filterColumn,
    filterOperator,
    filterValue,
    filterClass,
    addFilter,
  );
  toolbar.append(sortField, wrongLabel, filterField, chips, countText);

  // -- display options: the view's own controls (display.ts), applied to every thumbnail.
  // Wrapped as in the view (.igw > .igw-controls), whose styles they take.
  const state = new ModelState<GalleryState>(model);
  const fields = new Fields(state);
  const display = element("div", "igw igg-display");
  const controls = element("div", "igw-controls");
  controls.append(createDisplayControls(state, fields, scope));
  display.append(controls);

  const errorBox = element("div", "igg-error");
  errorBox.setAttribute("role", "alert");

  // -- the virtual grid --------------------------------------------------------
  const scroller = element("div", "igg-scroller");
  scroller.tabIndex = 0;
  scroller.setAttribute("role", "grid");
  scroller.setAttribute(
    "aria-label",
    "Images: arrow keys, Home and End move, Enter opens, Escape closes",
  );
  const spacer = element("div", "igg-spacer");
  scroller.append(spacer);
  const empty = element("div", "igg-empty", "No image matches the filters.");
  empty.hidden = true;

  // -- the three-panel view of the chosen image ------------------------------------
  const detail = element("section", "igg-detail");
  const detailHeader = element("div", "igg-detail-header");
  const detailTitle = element("span", "igg-detail-title");
  const closeButton = element("button", "igg-close", "Close");
  closeButton.type = "button";
  detailHeader.append(detailTitle, closeButton);
  const detailBody = element("div", "igg-detail-body");
  detail.append(detailHeader, detailBody);
  detail.hidden = true;

  root.append(toolbar, display, errorBox, scroller, empty, detail);
  el.replaceChildren(root);

  // -- state -----------------------------------------------------------------------
  const cache = new ThumbnailCache<Thumbnail>(CACHE_LIMIT);
  const pending = new Set<number>();
  const cells: Cell[] = [];
  let order = indicesOf(model.get("order"));
  let focusPosition = 0;
  let requested = 0;
  let frame = 0;
  let detailController: AbortController | null = null;

  const classNames = (): string[] => model.get("class_names");
  const className = (index: number | null): string => {
    if (index === null) {
      return "?";
    }
    return isolate(classNames()[index] ?? `class ${index}`);
  };
  const columnKind = (name: string): string =>
    model.get("columns").find(([column]) => column === name)?.[1] ?? "number";

  const renderOptions = (): RenderOptions => state.renderOptions();

  const cellSize = (): { width: number; height: number; columns: number } => {
    const width = 2 * PICTURE_SIZE + 3 * CELL_GAP;
    const height = PICTURE_SIZE + CAPTION_HEIGHT + 2 * CELL_GAP;
    const available = Math.max(scroller.clientWidth, width);
    return { width, height, columns: Math.max(1, Math.floor(available / width)) };
  };

  const makeCell = (): Cell => {
    const cellRoot = element("div", "igg-cell");
    cellRoot.tabIndex = -1;
    // Before any key reaches it (see isolateKeyboard).
    cellRoot.dataset.lmSuppressShortcuts = "true";
    cellRoot.setAttribute("role", "gridcell");
    const pictures = element("div", "igg-pictures");
    const input = element("canvas", "igg-input");
    const picture = element("canvas", "igg-picture");
    pictures.append(input, picture);
    const title = element("div", "igg-title");
    const details = element("div", "igg-details");
    cellRoot.append(pictures, title, details);
    spacer.append(cellRoot);
    const cell: Cell = {
      root: cellRoot,
      input,
      picture,
      title,
      details,
      position: -1,
      drawn: null,
      drawnOptions: "",
    };
    on(cellRoot, "click", () => {
      focusPosition = cell.position;
      openImage(order[cell.position]);
    });
    return cell;
  };

  const draw = (cell: Cell, thumb: Thumbnail, optionsKey: string): void => {
    const [height, width] = model.get("thumbnail_size");
    for (const canvas of [cell.input, cell.picture]) {
      if (canvas.width !== width || canvas.height !== height) {
        canvas.width = width;
        canvas.height = height;
      }
    }
    const inputContext = cell.input.getContext("2d");
    const pictureContext = cell.picture.getContext("2d");
    if (inputContext === null || pictureContext === null) {
      return;
    }
    if (cell.drawn !== thumb) {
      const pixels = inputContext.createImageData(width, height);
      for (let i = 0, j = 0; i < width * height; i++, j += 4) {
        pixels.data[j] = thumb.rgb[i * 3];
        pixels.data[j + 1] = thumb.rgb[i * 3 + 1];
        pixels.data[j + 2] = thumb.rgb[i * 3 + 2];
        pixels.data[j + 3] = 255;
      }
      inputContext.putImageData(pixels, 0, 0);
    }
    const pixels = pictureContext.createImageData(width, height);
    renderMaps(
      thumb.rgb,
      thumb.positive,
      thumb.negative,
      width,
      height,
      renderOptions(),
      pixels.data,
    );
    pictureContext.putImageData(pixels, 0, 0);
    cell.drawn = thumb;
    cell.drawnOptions = optionsKey;
    const caption = thumb.caption;
    const image = order[cell.position];
    cell.title.textContent =
      caption.label === null
        ? `#${image} · ${className(caption.predicted)}`
        : `#${image} · ${className(caption.label)} → ${className(caption.predicted)}`;
    const parts = [`Δ ${formatPercentage(caption.delta)}`];
    if (caption.mask_share !== undefined) {
      parts.push(`mask ${formatPercentage(caption.mask_share)}`);
    }
    if (caption.target !== caption.predicted) {
      parts.push(`explains ${className(caption.target)}`);
    }
    cell.details.textContent = parts.join(" · ");
    cell.root.title = isolate(caption.source);
    cell.root.classList.toggle("igg-wrong", caption.correct === false);
  };

  const layout = (): void => {
    frame = 0;
    const { width, height, columns } = cellSize();
    const rows = Math.ceil(order.length / columns);
    spacer.style.height = `${rows * height}px`;
    spacer.style.width = `${columns * width}px`;
    empty.hidden = order.length > 0;
    const [firstRow, lastRow] = visibleRows(
      scroller.scrollTop,
      scroller.clientHeight,
      height,
      rows,
      1,
    );
    const first = firstRow * columns;
    const last = Math.min(order.length - 1, (lastRow + 1) * columns - 1);
    const needed = Math.max(0, last - first + 1);
    while (cells.length < needed) {
      cells.push(makeCell());
    }
    const optionsKey = JSON.stringify(renderOptions());
    const selected = model.get("selected");
    const missing: number[] = [];
    cells.forEach((cell, slot) => {
      const position = first + slot;
      if (slot >= needed) {
        cell.root.hidden = true;
        cell.position = -1;
        return;
      }
      cell.root.hidden = false;
      if (cell.position !== position) {
        cell.position = position;
        cell.drawn = null;
        cell.root.classList.remove("igg-wrong");
        cell.title.textContent = `#${order[position]}`;
        cell.details.textContent = "loading…";
        for (const canvas of [cell.input, cell.picture]) {
          canvas.getContext("2d")?.clearRect(0, 0, canvas.width, canvas.height);
        }
      }
      const row = Math.floor(position / columns);
      const column = position % columns;
      cell.root.style.transform = `translate(${column * width}px, ${row * height}px)`;
      cell.root.style.width = `${width - CELL_GAP}px`;
      cell.root.style.height = `${height - CELL_GAP}px`;
      cell.root.dataset.image = String(order[position]);
      cell.root.classList.toggle("igg-selected", order[position] === selected);
      cell.root.tabIndex = position === focusPosition ? 0 : -1;
      const thumb = cache.get(order[position]);
      if (thumb === undefined) {
        missing.push(order[position]);
      } else if (cell.drawn !== thumb || cell.drawnOptions !== optionsKey) {
        try {
          draw(cell, thumb, optionsKey);
          showError("");
        } catch (error) {
          showError(error instanceof Error ? error.message : String(error));
        }
      }
    });
    // Ask for what is in view first, then one screen below it.
    const below = Math.min(order.length - 1, last + (last - first + 1));
    for (let position = last + 1; position <= below; position++) {
      if (!cache.has(order[position])) {
        missing.push(order[position]);
      }
    }
    request(missing);
  };

  const schedule = (): void => {
    if (frame === 0) {
      frame = requestAnimationFrame(layout);
    }
  };

  const request = (indices: number[]): void => {
    const wanted = indices.filter((index) => !pending.has(index));
    for (let start = 0; start < wanted.length; start += REQUEST_LIMIT) {
      const part = wanted.slice(start, start + REQUEST_LIMIT);
      for (const index of part) {
        pending.add(index);
      }
      requested += part.length;
      root.dataset.requested = String(requested);
      model.send({ type: "thumbnails", indices: part });
    }
  };

  const receive = (message: unknown, buffers: DataView[]): void => {
    const content = message as { type?: string; indices?: number[]; captions?: Caption[] };
    if (content.type !== "thumbnails" || !content.indices || !content.captions) {
      return;
    }
    const [height, width] = model.get("thumbnail_size");
    const pixels = height * width;
    const rgb = bytesOf(buffers[0]);
    const maps = bytesOf(buffers[1]).slice();
    const floats = new Float32Array(maps.buffer, 0, maps.byteLength / 4);
    content.indices.forEach((index, i) => {
      pending.delete(index);
      cache.set(index, {
        rgb: rgb.slice(i * pixels * 3, (i + 1) * pixels * 3),
        positive: floats.slice(2 * i * pixels, (2 * i + 1) * pixels),
        negative: floats.slice((2 * i + 1) * pixels, (2 * i + 2) * pixels),
        caption: content.captions?.[i] as Caption,
      });
    });
    root.dataset.cached = String(cache.size);
    schedule();
  };

  // -- the detail view ------------------------------------------------------------------
  const openImage = (index: number): void => {
    if (index === undefined || index < 0) {
      return;
    }
    detail.hidden = false;
    detailTitle.textContent = `Image #${index}: opening…`;
    model.send({ type: "open", index });
  };

  const showDetail = async (): Promise<void> => {
    detailController?.abort();
    detailController = null;
    const reference = model.get("detail");
    const index = model.get("selected");
    if (!reference || index < 0) {
      if (!detail.hidden) {
        keepFocus();
      }
      detail.hidden = true;
      detailBody.replaceChildren();
      schedule();
      return;
    }
    detail.hidden = false;
    const thumb = cache.get(index);
    const source = thumb ? ` · ${isolate(thumb.caption.source)}` : "";
    detailTitle.textContent = `Image #${index}${source} · ${model.get("live") ? "live" : "stored"}`;
    if (host === null) {
      return;
    }
    const child = new AbortController();
    detailController = child;
    const widget = await host.getWidget(reference);
    if (child.signal.aborted) {
      return;
    }
    const container = element("div", "igg-detail-widget");
    detailBody.replaceChildren(container);
    await widget.render({ el: container, signal: child.signal });
    schedule();
  };

  // -- showing the model's state in the controls -------------------------------------------
  const showError = (local: string): void => {
    const message = [model.get("error"), local].filter(Boolean).join("\n");
    errorBox.textContent = message;
    errorBox.hidden = message === "";
  };

  const fill = (node: HTMLSelectElement, choices: [string, string][]): void => {
    node.replaceChildren(
      ...choices.map(([value, text]) => {
        const option = element("option");
        option.value = value;
        option.text = text;
        return option;
      }),
    );
  };

  const showView = (): void => {
    const columns = model.get("columns");
    fill(
      sortSelect,
      columns.map(([name]) => [name, name]),
    );
    sortSelect.value = model.get("sort_by");
    directionButton.textContent = model.get("descending") ? "↓ high first" : "↑ low first";
    directionButton.title = "Reverse the order";
    const filters = currentView().filters;
    const hasCorrect = columns.some(([name]) => name === "correct");
    wrongLabel.hidden = !hasCorrect;
    wrongToggle.checked = filters.some(
      ([column, operator, value]) => column === "correct" && operator === "==" && value === false,
    );
    const chosen = filterColumn.value;
    fill(
      filterColumn,
      columns.map(([name]) => [name, name]),
    );
    filterColumn.value = columns.some(([name]) => name === chosen) ? chosen : columns[0]?.[0];
    showFilterInputs();
    chips.replaceChildren(
      ...filters.map((filter, position) => {
        const [column, operator, value] = filter;
        const shown =
          columnKind(column) === "class" ? className(Number(value)) : isolate(String(value));
        const chip = element("span", "igg-chip", `${column} ${operator} ${shown}`);
        const remove = element("button", "igg-chip-remove", "×");
        remove.type = "button";
        remove.title = "Remove this filter";
        remove.setAttribute("aria-label", `Remove filter ${column} ${operator} ${shown}`);
        on(remove, "click", () => {
          sendView({ filters: filters.filter((_, i) => i !== position) });
        });
        chip.append(remove);
        return chip;
      }),
    );
    order = indicesOf(model.get("order"));
    countText.textContent = `${order.length} of ${model.get("total")} images`;
    root.dataset.shown = String(order.length);
    focusPosition = Math.min(focusPosition, Math.max(0, order.length - 1));
    schedule();
  };

  const showFilterInputs = (): void => {
    const kind = columnKind(filterColumn.value);
    const operators = OPERATORS[kind] ?? OPERATORS.number;
    const chosen = filterOperator.value;
    fill(
      filterOperator,
      operators.map((operator) => [operator, operator]),
    );
    filterOperator.value = operators.includes(chosen) ? chosen : operators[0];
    const classes = kind === "class" || kind === "boolean";
    filterClass.hidden = !classes;
    filterValue.hidden = classes;
    if (kind === "class") {
      fill(
        filterClass,
        classNames().length > 0
          ? classNames().map((name, index) => [String(index), isolate(name)])
          : [["0", "class 0"]],
      );
    } else if (kind === "boolean") {
      fill(filterClass, [
        ["true", "true"],
        ["false", "false"],
      ]);
    }
  };

  // -- user input ---------------------------------------------------------------------------
  // The view asked for last: a second change made before the kernel answers
  // the first builds on it, not on the state the kernel has sent so far.
  type View = Pick<GalleryState, "sort_by" | "descending" | "filters">;
  let requestedView: View | null = null;
  const currentView = (): View =>
    requestedView ?? {
      sort_by: model.get("sort_by"),
      descending: model.get("descending"),
      filters: model.get("filters"),
    };
  const sendView = (changes: Partial<View>) => {
    requestedView = { ...currentView(), ...changes };
    model.send({ type: "view", ...requestedView });
  };
  on(sortSelect, "change", () => sendView({ sort_by: sortSelect.value }));
  on(directionButton, "click", () => sendView({ descending: !currentView().descending }));
  on(wrongToggle, "change", () => {
    const others = currentView().filters.filter(
      ([column, operator]) => !(column === "correct" && operator === "=="),
    );
    sendView({ filters: wrongToggle.checked ? [...others, ["correct", "==", false]] : others });
  });
  on(filterColumn, "change", showFilterInputs);
  const submitFilter = (): void => {
    const kind = columnKind(filterColumn.value);
    let value: number | string | boolean;
    if (kind === "class") {
      value = Number(filterClass.value);
    } else if (kind === "boolean") {
      value = filterClass.value === "true";
    } else if (kind === "text") {
      value = filterValue.value;
    } else {
      // Anything that is not a number goes to the kernel as text, which refuses it by name.
      const number = Number(filterValue.value);
      value =
        filterValue.value.trim() !== "" && Number.isFinite(number) ? number : filterValue.value;
    }
    sendView({
      filters: [...currentView().filters, [filterColumn.value, filterOperator.value, value]],
    });
    filterValue.value = "";
  };
  on(addFilter, "click", submitFilter);
  on(filterValue, "keydown", (event) => {
    if ((event as KeyboardEvent).key === "Enter") {
      submitFilter();
    }
  });

  on(scroller, "scroll", schedule);
  /** Focus the cell at `position`, scrolled into view (the grid itself when there is none). */
  const focusCell = (position: number): void => {
    focusPosition = Math.min(Math.max(0, order.length - 1), Math.max(0, position));
    const { height, columns } = cellSize();
    const top = Math.floor(focusPosition / columns) * height;
    if (top < scroller.scrollTop) {
      scroller.scrollTop = top;
    } else if (top + height > scroller.scrollTop + scroller.clientHeight) {
      scroller.scrollTop = top + height - scroller.clientHeight;
    }
    layout();
    const cell = cells.find((candidate) => candidate.position === focusPosition);
    (cell?.root ?? scroller).focus({ preventScroll: true });
  };
  const closeDetail = (): void => {
    model.send({ type: "close" });
    keepFocus();
    // Hidden now, as opening shows it at once (a host without widget references, such as
    // marimo, never sends the detail's change).
    detailController?.abort();
    detailController = null;
    detail.hidden = true;
    detailBody.replaceChildren();
  };
  /** The detail's controls are about to go: if one has focus, it goes back to the grid. */
  const keepFocus = (): void => {
    // In marimo the widget lives in a shadow root, whose own activeElement is the one to ask.
    const active = (root.getRootNode() as Document | ShadowRoot).activeElement;
    if (active === null || active === document.body || detail.contains(active)) {
      focusCell(focusPosition);
    }
  };
  on(scroller, "keydown", (event) => {
    const key = (event as KeyboardEvent).key;
    const { columns } = cellSize();
    const rowsInView = Math.max(1, Math.floor(scroller.clientHeight / cellSize().height));
    const moves: Record<string, number> = {
      ArrowRight: 1,
      ArrowLeft: -1,
      ArrowDown: columns,
      ArrowUp: -columns,
      PageDown: columns * rowsInView,
      PageUp: -columns * rowsInView,
      Home: -order.length,
      End: order.length,
    };
    if ((key === "Enter" || key === " ") && order.length > 0) {
      event.preventDefault();
      openImage(order[focusPosition]);
    } else if (key === "Escape" && !detail.hidden) {
      event.preventDefault();
      closeDetail();
    } else if (key in moves && order.length > 0) {
      event.preventDefault();
      focusCell(focusPosition + moves[key]);
    }
  });
  on(closeButton, "click", closeDetail);
  // Escape anywhere in the detail view closes it, unless a control there used the key.
  on(detail, "keydown", (event) => {
    if ((event as KeyboardEvent).key === "Escape" && !event.defaultPrevented) {
      event.preventDefault();
      closeDetail();
    }
  });
  const resize = new ResizeObserver(schedule);
  resize.observe(scroller);

  // -- model events -----------------------------------------------------------------------------
  model.on("msg:custom", receive);
  for (const key of DISPLAY_TRAITS) {
    listen(`change:${key}`, schedule);
  }
  for (const key of ["columns", "sort_by", "descending", "filters", "order", "total"]) {
    listen(`change:${key}`, showView);
  }
  // The kernel answers every view message with a new order, or with an error.
  listen("change:order", () => {
    requestedView = null;
  });
  listen("change:error", () => {
    requestedView = null;
  });
  listen("change:class_names", () => {
    showView();
    for (const cell of cells) {
      cell.drawn = null;
    }
    schedule();
  });
  listen("change:error", () => {
    showError("");
    // A refused display option (the window size) is marked at its control.
    fields.heard(model.get("error"));
  });
  listen("change:detail", () => void showDetail());
  listen("change:selected", schedule);

  showView();
  showError("");
  void showDetail();

  isolateKeyboard(root, scope);
  scope.add(() => {
    detailController?.abort();
    resize.disconnect();
    if (frame !== 0) {
      cancelAnimationFrame(frame);
    }
    model.off("msg:custom", receive);
  });
  return () => scope.dispose();
}

const render: Render<GalleryState> = ({ model, el, host }) => mountGallery(model, el, host ?? null);

export default { render };
