// The strip of clusters above the grid (a Gallery given igw.cluster_maps'
// clusters): per cluster its mean image and mean map, drawn as the grid
// draws a thumbnail (its cells and renderer), its class and size. Choosing a
// cluster filters the grid to its members (the toolbar's "cluster == n"
// filter); choosing it again shows every image.

import { bytesOf, type ModelState } from "../state";
import { element, type Scope } from "../view/dom";
import { type Cell, drawPictures, newCell, type Thumbnail } from "./grid";
import { classNameOf, type GalleryModel, type GalleryState } from "./model";
import type { Toolbar } from "./toolbar";

export interface ClusterStrip {
  readonly element: HTMLElement;
  /** Build the cells again (the clusters or the class names changed). */
  show(): void;
  /** Draw the pictures with the current display options, and mark the chosen cluster. */
  draw(): void;
}

/** The strip of `model`'s clusters; hidden when there are none. */
export function createClusterStrip(
  model: GalleryModel,
  state: ModelState<GalleryState>,
  scope: Scope,
  toolbar: Toolbar,
  showError: (message: string) => void,
): ClusterStrip {
  const root = element("div", "igg-clusters");
  root.setAttribute("role", "list");
  root.setAttribute("aria-label", "Clusters of the maps: choose one to show its members");
  let cells: Cell[] = [];
  let pictures: Thumbnail[] = [];

  const draw = (): void => {
    const chosen = toolbar.filteredTo("cluster");
    const size = model.get("thumbnail_size");
    const options = state.renderOptions();
    const optionsKey = JSON.stringify(options);
    try {
      cells.forEach((cell, number) => {
        cell.root.classList.toggle("igg-selected", chosen === number);
        cell.root.setAttribute("aria-pressed", String(chosen === number));
        drawPictures(cell, pictures[number], size, options, optionsKey);
      });
    } catch (error) {
      showError(error instanceof Error ? error.message : String(error));
    }
  };

  const show = (): void => {
    const clusters = model.get("clusters");
    root.hidden = clusters.length === 0;
    const [height, width] = model.get("thumbnail_size");
    const pixels = height * width;
    const rgb = bytesOf(model.get("cluster_rgb"));
    const maps = bytesOf(model.get("cluster_maps")).slice();
    const floats = new Float32Array(maps.buffer, 0, maps.byteLength / 4);
    root.replaceChildren(
      element("div", "igg-clusters-title", "Clusters of the maps: choose one to show its members"),
    );
    pictures = clusters.map(([number], i) => ({
      rgb: rgb.slice(i * pixels * 3, (i + 1) * pixels * 3),
      positive: floats.slice(2 * i * pixels, (2 * i + 1) * pixels),
      negative: floats.slice((2 * i + 1) * pixels, (2 * i + 2) * pixels),
      caption: {
        source: `cluster ${number}`,
        label: null,
        predicted: 0,
        target: 0,
        score: Number.NaN,
        delta: Number.NaN,
        correct: null,
      },
    }));
    cells = clusters.map(([number, classIndex, size]) => {
      const cell = newCell(root);
      cell.root.tabIndex = 0;
      cell.root.setAttribute("role", "listitem");
      cell.root.dataset.cluster = String(number);
      cell.title.textContent = `Cluster ${number} · ${classNameOf(model, classIndex)}`;
      cell.details.textContent = `${size} image${size === 1 ? "" : "s"} · mean map`;
      const choose = (): void =>
        toolbar.filterBy("cluster", toolbar.filteredTo("cluster") === number ? null : number);
      scope.on(cell.root, "click", choose);
      scope.on<KeyboardEvent>(cell.root, "keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          choose();
        }
      });
      return cell;
    });
    draw();
  };

  return { element: root, show, draw };
}
