// anywidget entry point: ig_widget.IGWidget loads this module (built to
// ig_widget/static/widget.js) and calls render once per displayed view.

import type { Render } from "@anywidget/types";
import { mountView, type WidgetState } from "./view";

// A stored result shown without a model (compute_enabled false) cannot recompute.
const render: Render<WidgetState> = ({ model, el }) =>
  mountView(model, el, { computeEnabled: model.get("compute_enabled") !== false });

export default { render };
