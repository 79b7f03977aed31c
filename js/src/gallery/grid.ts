// The Gallery's virtual grid: only the cells in view exist in the DOM; their
// thumbnails are asked from the kernel as they come into view and arrive as
// binary buffers (RGB bytes and the two IG channel maps), kept in a bounded
// cache and redrawn here by the shared renderer whenever a display option
// changes. By keyboard: the arrows, Home/End and PageUp/PageDown move between
// cells, Enter or Space opens one, Escape closes the open one.

import { isolate } from "../format";
import type { Binary } from "../generated";
import { type RenderOptions, renderMaps } from "../render";
import { bytesOf, type ModelState } from "../state";
import { element, type Scope } from "../view/dom";
import { type Caption, classNameOf, type GalleryModel, type GalleryState } from "./model";

export interface Thumbnail {
  rgb: Uint8Array;
  positive: Float32Array;
  negative: Float32Array;
  caption: Caption;
  /** The image and its picture as drawn last, and the display options they were drawn with. */
  decoded?: { input: ImageData; picture: ImageData; optionsKey: string };
}

export interface Cell {
  root: HTMLElement;
  input: HTMLCanvasElement;
  picture: HTMLCanvasElement;
  title: HTMLElement;
  details: HTMLElement;
  position: number;
  /** The image shown (-1: none yet). */
  image: number;
  /** Column, row and size last written to the cell's style. */
  placed: string;
  drawn: Thumbnail | null;
  drawnOptions: string;
}

// Thumbnails kept in the browser; the least recently shown go first.
export const CACHE_LIMIT = 800;
// Thumbnails asked for in one message.
const REQUEST_LIMIT = 48;
// Requests waiting on the kernel at a time.
const IN_FLIGHT = 2;
// Screens of thumbnails asked for ahead of the scroll, and behind it.
const SCREENS_AHEAD = 6;
const SCREENS_BEHIND = 1;
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

/** The integers from `first` to `last`, inclusive (none if last < first). */
function range(first: number, last: number): number[] {
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);
}

/** A number in a caption: percentages for shares, three significant digits otherwise. */
export function formatPercentage(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return "–";
  }
  return `${Number((100 * value).toPrecision(3))}%`;
}

const GRID_LABEL = "Images: arrow keys, Home and End move, Enter opens, Escape closes";

/** The scrolling grid, the element that gives it its height, and the "no image" note. */
function gridElements(): { scroller: HTMLElement; spacer: HTMLElement; empty: HTMLElement } {
  const scroller = element("div", "igg-scroller");
  scroller.tabIndex = 0;
  scroller.setAttribute("role", "grid");
  scroller.setAttribute("aria-label", GRID_LABEL);
  const spacer = element("div", "igg-spacer");
  scroller.append(spacer);
  const empty = element("div", "igg-empty", "No image matches the filters.");
  empty.hidden = true;
  return { scroller, spacer, empty };
}

/** A cell's size with its gap, and how many fit across `available` CSS pixels. */
function cellSizeIn(available: number): { width: number; height: number; columns: number } {
  const width = 2 * PICTURE_SIZE + 3 * CELL_GAP;
  const height = PICTURE_SIZE + CAPTION_HEIGHT + 2 * CELL_GAP;
  return { width, height, columns: Math.max(1, Math.floor(Math.max(available, width) / width)) };
}

/** How far each moving key takes the focus, in cells. */
function keyMoves(columns: number, rowsInView: number, count: number): Record<string, number> {
  const page = columns * Math.max(1, rowsInView);
  return {
    ArrowRight: 1,
    ArrowLeft: -1,
    ArrowDown: columns,
    ArrowUp: -columns,
    PageDown: page,
    PageUp: -page,
    Home: -count,
    End: count,
  };
}

/**
 * Put `cell` at `position` (image `image`) of a grid `columns` wide; a new
 * place or image shows nothing yet; only what changed is written to the DOM.
 */
function place(
  cell: Cell,
  position: number,
  image: number,
  columns: number,
  width: number,
  height: number,
): void {
  // A new order (sorted, filtered) puts other images at the same places.
  if (cell.position !== position || cell.image !== image) {
    cell.position = position;
    cell.image = image;
    cell.drawn = null;
    cell.root.classList.remove("igg-wrong");
    cell.root.dataset.image = String(image);
    cell.title.textContent = `#${image}`;
    cell.details.textContent = "loading…";
    for (const canvas of [cell.input, cell.picture]) {
      canvas.getContext("2d")?.clearRect(0, 0, canvas.width, canvas.height);
    }
  }
  const placed = `${position % columns} ${Math.floor(position / columns)} ${width} ${height}`;
  if (cell.placed !== placed) {
    cell.placed = placed;
    const row = Math.floor(position / columns);
    const column = position % columns;
    cell.root.style.transform = `translate(${column * width}px, ${row * height}px)`;
    cell.root.style.width = `${width - CELL_GAP}px`;
    cell.root.style.height = `${height - CELL_GAP}px`;
  }
}

/** A cell's elements, placed in `spacer`, showing nothing yet. */
export function newCell(spacer: HTMLElement): Cell {
  const root = element("div", "igg-cell");
  root.tabIndex = -1;
  // Before any key reaches it (see isolateKeyboard).
  root.dataset.lmSuppressShortcuts = "true";
  root.setAttribute("role", "gridcell");
  const pictures = element("div", "igg-pictures");
  const input = element("canvas", "igg-input");
  const picture = element("canvas", "igg-picture");
  pictures.append(input, picture);
  const title = element("div", "igg-title");
  const details = element("div", "igg-details");
  root.append(pictures, title, details);
  spacer.append(root);
  return {
    root,
    input,
    picture,
    title,
    details,
    position: -1,
    image: -1,
    placed: "",
    drawn: null,
    drawnOptions: "",
  };
}

/** Draw `thumb`'s input and picture in `cell` with the display `options`; false if it cannot. */
export function drawPictures(
  cell: Cell,
  thumb: Thumbnail,
  [height, width]: [number, number],
  options: RenderOptions,
  optionsKey: string,
): boolean {
  for (const canvas of [cell.input, cell.picture]) {
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
  }
  const inputContext = cell.input.getContext("2d");
  const pictureContext = cell.picture.getContext("2d");
  if (inputContext === null || pictureContext === null) {
    return false;
  }
  // Decoded once per thumbnail and display options: a cell scrolled back
  // into view is two putImageData calls, not a render.
  if (thumb.decoded?.optionsKey !== optionsKey) {
    const input = thumb.decoded?.input ?? inputContext.createImageData(width, height);
    if (thumb.decoded === undefined) {
      for (let i = 0, j = 0; i < width * height; i++, j += 4) {
        input.data[j] = thumb.rgb[i * 3];
        input.data[j + 1] = thumb.rgb[i * 3 + 1];
        input.data[j + 2] = thumb.rgb[i * 3 + 2];
        input.data[j + 3] = 255;
      }
    }
    const picture = pictureContext.createImageData(width, height);
    renderMaps(thumb.rgb, thumb.positive, thumb.negative, width, height, options, picture.data);
    thumb.decoded = { input, picture, optionsKey };
  }
  if (cell.drawn !== thumb) {
    inputContext.putImageData(thumb.decoded.input, 0, 0);
  }
  pictureContext.putImageData(thumb.decoded.picture, 0, 0);
  cell.drawn = thumb;
  cell.drawnOptions = optionsKey;
  return true;
}

/** Draw image `image`'s thumbnail and caption in `cell` with the display `options`. */
function drawCell(
  cell: Cell,
  thumb: Thumbnail,
  image: number,
  size: [number, number],
  options: RenderOptions,
  optionsKey: string,
  className: (index: number | null) => string,
): void {
  if (!drawPictures(cell, thumb, size, options, optionsKey)) {
    return;
  }
  const caption = thumb.caption;
  cell.title.textContent =
    caption.label === null
      ? `#${image} · ${className(caption.predicted)}`
      : `#${image} · ${className(caption.label)} → ${className(caption.predicted)}`;
  const parts = caption.delta === undefined ? [] : [`Δ ${formatPercentage(caption.delta)}`];
  if (caption.mask_share !== undefined) {
    parts.push(`mask ${formatPercentage(caption.mask_share)}`);
  }
  if (caption.cluster !== undefined && caption.cluster !== null) {
    // First, so that a narrow cell does not cut it off.
    parts.unshift(`cluster ${caption.cluster}`);
  }
  if (caption.target !== caption.predicted) {
    parts.push(`explains ${className(caption.target)}`);
  }
  if (caption.rank_correlation !== undefined) {
    const rho = caption.rank_correlation;
    parts.push(`ρ ${rho === null || Number.isNaN(rho) ? "–" : rho.toFixed(2)}`);
  }
  if (caption.top_iou !== undefined) {
    parts.push(`top IoU ${formatPercentage(caption.top_iou)}`);
  }
  cell.details.textContent = parts.join(" · ");
  cell.root.title = isolate(caption.source);
  cell.root.classList.toggle("igg-wrong", caption.correct === false);
}

/**
 * The thumbnails here and those asked for: asked in messages of at most
 * REQUEST_LIMIT, at most IN_FLIGHT at a time, kept in a bounded cache when
 * they arrive. `root` carries the counts (data-requested, data-cached,
 * data-waiting) for tests and benchmarks.
 */
class Thumbnails {
  readonly cache = new ThumbnailCache<Thumbnail>(CACHE_LIMIT);
  private readonly pending = new Set<number>();
  /** Asked for but not sent yet, most wanted first. */
  private queue: number[] = [];
  private inFlight = 0;
  private requested = 0;

  constructor(
    private readonly model: GalleryModel,
    private readonly root: HTMLElement,
    private readonly arrived: () => void,
  ) {}

  /**
   * Want `indices`, most wanted first, in place of what was wanted before.
   * At most IN_FLIGHT messages wait on the kernel at a time, so that where
   * the scroll stops is asked for next rather than behind every screen it
   * passed.
   */
  request(indices: number[]): void {
    this.queue = indices.filter((index) => !this.pending.has(index));
    this.pump();
    this.count();
  }

  /** Thumbnails asked for and not here yet (data-waiting, for tests and benchmarks). */
  private count(): void {
    this.root.dataset.waiting = String(this.pending.size + this.queue.length);
  }

  private pump(): void {
    while (this.inFlight < IN_FLIGHT && this.queue.length > 0) {
      const part = this.queue.splice(0, REQUEST_LIMIT);
      for (const index of part) {
        this.pending.add(index);
      }
      this.inFlight += 1;
      this.requested += part.length;
      this.root.dataset.requested = String(this.requested);
      this.model.send({ type: "thumbnails", indices: part });
    }
  }

  /** A message from the kernel: thumbnails, each its RGB bytes and two float32 maps. */
  readonly receive = (message: unknown, buffers: DataView[]): void => {
    const content = message as { type?: string; indices?: number[]; captions?: Caption[] };
    if (content.type !== "thumbnails" || !content.indices || !content.captions) {
      return;
    }
    const [height, width] = this.model.get("thumbnail_size");
    const pixels = height * width;
    const rgb = bytesOf(buffers[0]);
    const maps = bytesOf(buffers[1]).slice();
    const floats = new Float32Array(maps.buffer, 0, maps.byteLength / 4);
    content.indices.forEach((index, i) => {
      this.pending.delete(index);
      this.cache.set(index, {
        rgb: rgb.slice(i * pixels * 3, (i + 1) * pixels * 3),
        positive: floats.slice(2 * i * pixels, (2 * i + 1) * pixels),
        negative: floats.slice((2 * i + 1) * pixels, (2 * i + 2) * pixels),
        caption: content.captions?.[i] as Caption,
      });
    });
    this.root.dataset.cached = String(this.cache.size);
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.pump();
    this.count();
    this.arrived();
  };
}

export interface Grid {
  /** The scrolling grid, and the note shown when no image matches. */
  readonly element: HTMLElement;
  readonly empty: HTMLElement;
  /** Lay out and draw on the next frame. */
  schedule(): void;
  /** Take the model's order of the images. */
  takeOrder(): void;
  /** Draw every cell again (the class names changed). */
  redraw(): void;
  /** Focus the focused image's cell (or the grid). */
  focus(): void;
  /** Image `index`'s caption, if its thumbnail is here. */
  captionOf(index: number): Caption | undefined;
}

/** What the grid asks of the rest of the Gallery. */
export interface GridHost {
  /** Open image `index`'s detail view. */
  open(index: number): void;
  /** Close the detail view, if one is open; false if none was. */
  close(): boolean;
  /** Show an error from drawing ("" clears it). */
  showError(message: string): void;
}

/** The grid of `model`'s images in `root` (which carries its counters for tests). */
export function createGrid(
  model: GalleryModel,
  state: ModelState<GalleryState>,
  scope: Scope,
  root: HTMLElement,
  gallery: GridHost,
): Grid {
  const { scroller, spacer, empty } = gridElements();
  const cells: Cell[] = [];
  let order = indicesOf(model.get("order"));
  let focusPosition = 0;
  let frame = 0;
  let lastScrollTop = 0;
  const thumbnails = new Thumbnails(model, root, () => schedule());
  const cache = thumbnails.cache;
  const makeCell = (): Cell => {
    const cell = newCell(spacer);
    scope.on(cell.root, "click", () => {
      focusPosition = cell.position;
      gallery.open(order[cell.position]);
    });
    return cell;
  };
  const className = (index: number | null): string => classNameOf(model, index);

  const cellSize = () => cellSizeIn(scroller.clientWidth);

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
    const options = state.renderOptions();
    const optionsKey = JSON.stringify(options);
    const selected = model.get("selected");
    const missing: number[] = [];
    // Each position keeps its cell while it stays in view (slot = position
    // modulo the cells in use), so a scroll by one row redraws one row.
    cells.forEach((cell, slot) => {
      const position = first + ((slot - (first % needed) + needed) % needed);
      if (slot >= needed) {
        if (!cell.root.hidden) {
          cell.root.hidden = true;
        }
        cell.position = -1;
        return;
      }
      if (cell.root.hidden) {
        cell.root.hidden = false;
      }
      place(cell, position, order[position], columns, width, height);
      cell.root.classList.toggle("igg-selected", order[position] === selected);
      const tabIndex = position === focusPosition ? 0 : -1;
      if (cell.root.tabIndex !== tabIndex) {
        cell.root.tabIndex = tabIndex;
      }
      const thumb = cache.get(order[position]);
      if (thumb === undefined) {
        missing.push(order[position]);
      } else if (cell.drawn !== thumb || cell.drawnOptions !== optionsKey) {
        try {
          const size = model.get("thumbnail_size");
          drawCell(cell, thumb, order[position], size, options, optionsKey, className);
          gallery.showError("");
        } catch (error) {
          gallery.showError(error instanceof Error ? error.message : String(error));
        }
      }
    });
    // Ask for what is in view first, then screens ahead of the scroll's
    // direction, then one behind it.
    const screen = last - first + 1;
    const down = scroller.scrollTop >= lastScrollTop;
    lastScrollTop = scroller.scrollTop;
    const [below, above] = down ? [SCREENS_AHEAD, SCREENS_BEHIND] : [SCREENS_BEHIND, SCREENS_AHEAD];
    // Nearest first on each side.
    const after = range(last + 1, Math.min(order.length - 1, last + below * screen));
    const before = range(Math.max(0, first - above * screen), first - 1).reverse();
    for (const position of down ? [...after, ...before] : [...before, ...after]) {
      if (!cache.has(order[position])) {
        missing.push(order[position]);
      }
    }
    thumbnails.request(missing);
  };

  const schedule = (): void => {
    if (frame === 0) {
      frame = requestAnimationFrame(layout);
    }
  };

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
  scope.on<KeyboardEvent>(scroller, "keydown", (event) => {
    const key = event.key;
    const { columns, height } = cellSize();
    const moves = keyMoves(columns, Math.floor(scroller.clientHeight / height), order.length);
    if ((key === "Enter" || key === " ") && order.length > 0) {
      event.preventDefault();
      gallery.open(order[focusPosition]);
    } else if (key === "Escape" && gallery.close()) {
      event.preventDefault();
    } else if (key in moves && order.length > 0) {
      event.preventDefault();
      focusCell(focusPosition + moves[key]);
    }
  });
  const resize = new ResizeObserver(schedule);
  resize.observe(scroller);
  model.on("msg:custom", thumbnails.receive);
  scope.add(() => {
    resize.disconnect();
    if (frame !== 0) {
      cancelAnimationFrame(frame);
    }
    model.off("msg:custom", thumbnails.receive);
  });
  scope.on(scroller, "scroll", schedule);

  return {
    element: scroller,
    empty,
    schedule,
    takeOrder(): void {
      order = indicesOf(model.get("order"));
      root.dataset.shown = String(order.length);
      focusPosition = Math.min(focusPosition, Math.max(0, order.length - 1));
      schedule();
    },
    redraw(): void {
      for (const cell of cells) {
        cell.drawn = null;
      }
      schedule();
    },
    focus: () => focusCell(focusPosition),
    captionOf: (index) => cache.get(index)?.caption,
  };
}
