// Entry point of the standalone HTML export (IGWidget.to_html): reads the
// embedded JSON state, turns the base64 buffers back into bytes and shows the
// view on a page-local model. Display controls work; computing needs a kernel.

import { LocalModel } from "./local-model";
import { mountView, type WidgetState } from "./view";

interface EmbeddedData {
  state: Record<string, unknown>;
  buffers: Record<string, string>;
}

function decodeBase64(text: string): DataView {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) {
    bytes[i] = binary.charCodeAt(i);
  }
  return new DataView(bytes.buffer);
}

/**
 * Mount the exported widget described by the JSON in `dataElement` into `root`.
 *
 * @example
 * mountStandalone(document.getElementById("igw-data"), document.getElementById("igw-root"));
 */
export function mountStandalone(dataElement: HTMLElement, root: HTMLElement): () => void {
  const data = JSON.parse(dataElement.textContent ?? "") as EmbeddedData;
  const state: Record<string, unknown> = { ...data.state };
  for (const [name, encoded] of Object.entries(data.buffers)) {
    state[name] = decodeBase64(encoded);
  }
  const model = new LocalModel(state as WidgetState);
  return mountView(model, root, { computeEnabled: false });
}

const dataElement = document.getElementById("igw-data");
const root = document.getElementById("igw-root");
if (dataElement !== null && root !== null) {
  mountStandalone(dataElement, root);
}
