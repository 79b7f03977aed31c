// The Gallery's toolbar: sort column and direction, "misclassified only", the
// filter builder and its chips, and the count. Sorting and filtering run in
// the kernel: the toolbar sends the view it wants and shows the one it has.

import { isolate } from "../format";
import { element, type Scope } from "../view/dom";
import { classNameOf, columnKindOf, type GalleryModel, type GalleryState } from "./model";

export const OPERATORS: Record<string, string[]> = {
  number: ["<", "<=", ">", ">=", "==", "!="],
  integer: ["==", "!=", "<", "<=", ">", ">="],
  class: ["==", "!="],
  boolean: ["=="],
  text: ["contains", "==", "!="],
};

type View = Pick<GalleryState, "sort_by" | "descending" | "filters">;

function fill(node: HTMLSelectElement, choices: [string, string][]): void {
  node.replaceChildren(
    ...choices.map(([value, text]) => {
      const option = element("option");
      option.value = value;
      option.text = text;
      return option;
    }),
  );
}

function button(className: string, text?: string): HTMLButtonElement {
  const node = element("button", className, text);
  node.type = "button";
  return node;
}

/** Filter `position` of `filters` as a chip whose button runs `remove`. */
function chip(
  model: GalleryModel,
  scope: Scope,
  filters: GalleryState["filters"],
  position: number,
  remove: () => void,
): HTMLElement {
  const [column, operator, value] = filters[position];
  const shown =
    columnKindOf(model, column) === "class"
      ? classNameOf(model, Number(value))
      : isolate(String(value));
  const node = element("span", "igg-chip", `${column} ${operator} ${shown}`);
  const removeButton = button("igg-chip-remove", "×");
  removeButton.title = "Remove this filter";
  removeButton.setAttribute("aria-label", `Remove filter ${column} ${operator} ${shown}`);
  scope.on(removeButton, "click", remove);
  node.append(removeButton);
  return node;
}

export interface Toolbar {
  readonly element: HTMLElement;
  /** Show the model's view (columns, sort, filters, count). */
  show(): void;
  /** Keep only the images whose `column` is `value` (null: drop that filter). */
  filterBy(column: string, value: number | null): void;
  /** The `column == value` filter of the view asked for last, if there is one. */
  filteredTo(column: string): number | null;
}

/** The toolbar of `model`, its listeners in `scope`. */
export function createToolbar(model: GalleryModel, scope: Scope): Toolbar {
  const root = element("div", "igg-toolbar");
  const sortSelect = element("select", "igg-sort");
  sortSelect.title = "Sort by this column";
  const directionButton = button("igg-direction");
  directionButton.title = "Reverse the order";
  const wrongToggle = element("input", "igg-misclassified");
  wrongToggle.type = "checkbox";
  const wrongLabel = element("label", "igg-field");
  wrongLabel.append(wrongToggle, element("span", undefined, "misclassified only"));
  const filterColumn = element("select", "igg-filter-column");
  const filterOperator = element("select", "igg-filter-operator");
  const filterValue = element("input", "igg-filter-value");
  filterValue.size = 8;
  const filterClass = element("select", "igg-filter-class");
  const addFilter = button("igg-add-filter", "Add filter");
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
  root.append(sortField, wrongLabel, filterField, chips, countText);

  // The view asked for last: a second change made before the kernel answers
  // the first builds on it, not on the state the kernel has sent so far.
  let requestedView: View | null = null;
  const currentView = (): View =>
    requestedView ?? {
      sort_by: model.get("sort_by"),
      descending: model.get("descending"),
      filters: model.get("filters"),
    };
  const sendView = (changes: Partial<View>): void => {
    requestedView = { ...currentView(), ...changes };
    model.send({ type: "view", ...requestedView });
  };

  const showFilterInputs = (): void => {
    const kind = columnKindOf(model, filterColumn.value);
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
      const names = model.get("class_names");
      fill(
        filterClass,
        names.length > 0
          ? names.map((name, index) => [String(index), isolate(name)])
          : [["0", "class 0"]],
      );
    } else if (kind === "boolean") {
      fill(filterClass, [
        ["true", "true"],
        ["false", "false"],
      ]);
    }
  };

  const show = (): void => {
    const columns = model.get("columns");
    fill(
      sortSelect,
      columns.map(([name]) => [name, name]),
    );
    sortSelect.value = model.get("sort_by");
    directionButton.textContent = model.get("descending") ? "↓ high first" : "↑ low first";
    const filters = currentView().filters;
    wrongLabel.hidden = !columns.some(([name]) => name === "correct");
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
      ...filters.map((_, position) =>
        chip(model, scope, filters, position, () =>
          sendView({ filters: filters.filter((_, i) => i !== position) }),
        ),
      ),
    );
    const shown = model.get("order");
    countText.textContent = `${shown.byteLength / 4} of ${model.get("total")} images`;
  };

  let submittedText: string | null = null;
  const submitFilter = (): void => {
    const kind = columnKindOf(model, filterColumn.value);
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
    submittedText = filterValue.value;
  };

  scope.on(sortSelect, "change", () => sendView({ sort_by: sortSelect.value }));
  scope.on(directionButton, "click", () => sendView({ descending: !currentView().descending }));
  scope.on(wrongToggle, "change", () => {
    const others = currentView().filters.filter(
      ([column, operator]) => !(column === "correct" && operator === "=="),
    );
    sendView({ filters: wrongToggle.checked ? [...others, ["correct", "==", false]] : others });
  });
  scope.on(filterColumn, "change", showFilterInputs);
  scope.on(addFilter, "click", submitFilter);
  scope.on<KeyboardEvent>(filterValue, "keydown", (event) => {
    if (event.key === "Enter") {
      submitFilter();
    }
  });
  // The kernel answers every view message with a new view, or with an error.
  const answered = (): void => {
    requestedView = null;
  };
  // A typed value stays in its box until the kernel takes its filter: a refused one is
  // marked there, to be corrected in place.
  const filterTaken = (): void => {
    if (submittedText !== null && filterValue.value === submittedText) {
      filterValue.value = "";
    }
    submittedText = null;
    filterValue.removeAttribute("aria-invalid");
  };
  const filterRefused = (): void => {
    if (submittedText !== null && model.get("error") !== "") {
      filterValue.setAttribute("aria-invalid", "true");
      submittedText = null;
    }
  };
  for (const [key, listener] of [
    ["order", answered],
    ["error", answered],
    ["filters", filterTaken],
    ["error", filterRefused],
  ] as const) {
    model.on(`change:${key}`, listener);
    scope.add(() => model.off(`change:${key}`, listener));
  }
  scope.on(filterValue, "input", () => filterValue.removeAttribute("aria-invalid"));
  const isEqualityOn =
    (name: string) =>
    ([column, operator]: GalleryState["filters"][number]): boolean =>
      column === name && operator === "==";
  const filterBy = (column: string, value: number | null): void => {
    const others = currentView().filters.filter((filter) => !isEqualityOn(column)(filter));
    sendView({ filters: value === null ? others : [...others, [column, "==", value]] });
  };
  const filteredTo = (column: string): number | null => {
    const found = currentView().filters.find(isEqualityOn(column));
    return found === undefined ? null : Number(found[2]);
  };
  return { element: root, show, filterBy, filteredTo };
}
