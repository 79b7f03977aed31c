// Errors and notices that belong to no single control: the kernel's (a model
// that failed, a cancelled computation) and the renderer's. A message about
// one option ("steps: ...") is shown beside that control instead (controls.ts).

import type { SyncedState } from "../state";
import { type Component, element, Scope } from "./dom";

export interface Messages extends Component {
  /** Show (or, with "", clear) an error from drawing in the browser. */
  setRenderError(message: string): void;
  /** Messages that a control shows beside itself; these are left out here. */
  setShownAtFields(messages: ReadonlySet<string>): void;
}

export function createMessages(state: SyncedState): Messages {
  const scope = new Scope();
  const element_ = element("div", "igw-messages");
  // role="alert": an error is announced once, when it appears.
  const errorBox = element("div", "igw-error");
  errorBox.setAttribute("role", "alert");
  const noticeBox = element("div", "igw-notice");
  noticeBox.setAttribute("role", "status");
  element_.append(errorBox, noticeBox);
  let renderError = "";
  let atFields: ReadonlySet<string> = new Set();

  const show = (): void => {
    const errors = [state.get("error"), renderError].filter(
      (message) => message !== "" && !atFields.has(message),
    );
    const text = [...new Set(errors)].join("\n");
    errorBox.textContent = text;
    errorBox.hidden = text === "";
    const notice = state.get("notice");
    noticeBox.textContent = notice;
    noticeBox.hidden = notice === "";
  };
  state.listen(scope, ["error", "notice"], show);
  show();
  return {
    element: element_,
    setRenderError(message: string): void {
      renderError = message;
      show();
    },
    setShownAtFields(messages: ReadonlySet<string>): void {
      atFields = messages;
      show();
    },
    dispose: () => scope.dispose(),
  };
}
