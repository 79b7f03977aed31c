// The sanity check under the panels: the map of the shown method as the
// model's layers are randomised from the output down (IGWidget.sanity_check),
// a strip of pictures with the similarity to the original under each. The
// pictures are redrawn from the raw maps with the display options, as the
// panels are; each is scaled on its own, so the key is a legend without
// numbers. Layer and class names are model text: textContent only.

import { isolate } from "../format";
import type { SanityStep } from "../generated";
import { keyLegend, renderMaps } from "../render";
import { bytesOf, floatsOf, SyncedState } from "../state";
import { type Component, element, Scope } from "./dom";
import { showLegend } from "./key";
import { makePicture, type Picture, picturePixels } from "./panels";

const DATA_KEYS = ["sanity", "sanity_rgb", "sanity_maps"];

function similarity(value: number | null): string {
  return value === null ? "n/a" : value.toFixed(2);
}

/** The similarities under a picture, as SanityCheck.report_section words them. */
export function similarityText(step: SanityStep): string {
  return (
    `Spearman ${similarity(step.spearman_abs)} (signed ${similarity(step.spearman)}), ` +
    `SSIM ${similarity(step.ssim)}`
  );
}

export function createSanityStrip(state: SyncedState): Component {
  const scope = new Scope();
  const root = element("section", "igw-sanity");
  const heading = element("h3", "igw-sanity-title", "Sanity check: model randomisation");
  root.setAttribute("aria-label", "Sanity check: model randomisation");
  const note = element("p", "igw-description igw-sanity-note");
  const legend = element("div", "igw-key igw-sanity-legend");
  const strip = element("div", "igw-sanity-strip");
  root.append(heading, note, legend, strip);

  let pictures: Picture[] = [];
  let image: Uint8Array = new Uint8Array(0);
  let maps: Float32Array = new Float32Array(0);
  let width = 0;
  let height = 0;

  const load = (): void => {
    const data = state.get("sanity");
    const steps = data.steps;
    root.hidden = steps.length === 0;
    [height, width] = data.size;
    image = bytesOf(state.get("sanity_rgb"));
    maps = floatsOf(state.get("sanity_maps"));
    const label = isolate(data.label);
    note.textContent =
      `${data.explainer_title} for “${label}” as the model's trainable layers are replaced ` +
      "by random weights one more at a time, from the output down (a copy; the model is " +
      "unchanged): each picture is titled by the last layer made random. A method that " +
      "explains the model gives maps unlike the original once its layers are random. Under " +
      "each: the rank correlation (Spearman) of the absolute and of the signed maps with " +
      "the original's, and SSIM.";
    for (const picture of pictures) {
      picture.figure.remove();
    }
    pictures = steps.map((step, index) => {
      const picture = makePicture(scope, index === 0 ? "original" : step.label, "igw-sanity-step");
      if (index > 0) {
        // The title is the layer alone, to fit the small picture; the picture says the rest.
        picture.canvas.setAttribute("aria-label", `${step.label} and the layers above it random`);
      }
      picture.canvas.style.aspectRatio = `${width} / ${height}`;
      picture.description.textContent = similarityText(step);
      picture.figure.append(picture.description);
      strip.append(picture.figure);
      return picture;
    });
  };

  const draw = (): void => {
    const options = state.renderOptions();
    const pixels = width * height;
    pictures.forEach((picture, index) => {
      const data = picturePixels(picture, width, height);
      if (data === null || picture.context === null) {
        return;
      }
      const start = 2 * index * pixels;
      const positive = maps.subarray(start, start + pixels);
      const negative = maps.subarray(start + pixels, start + 2 * pixels);
      renderMaps(image, positive, negative, width, height, options, data.data);
      picture.context.putImageData(data, 0, 0);
    });
    if (pictures.length > 0) {
      showLegend(legend, keyLegend(options), isolate(state.get("sanity").label));
    }
  };

  // A failure to draw is the panels' to report: they draw with the same options.
  const redraw = (): void => {
    try {
      draw();
    } catch {
      // The panels show the renderer's message for these options.
    }
  };

  // The three data traits change in one update: load once after all of them.
  let scheduled = false;
  state.listen(scope, DATA_KEYS, () => {
    if (scheduled) {
      return;
    }
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      if (!scope.disposed) {
        load();
        redraw();
      }
    });
  });
  state.listen(scope, SyncedState.renderKeys, redraw);
  load();
  redraw();
  return { element: root, dispose: () => scope.dispose() };
}
