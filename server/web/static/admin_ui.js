// The pieces every admin section builds its page from, in one place so that a status line, a
// table cell or a row's button looks and reads the same in every section (admin*.js).
// Everything is set as text (textContent), never as markup: the values come from the server.

export const $ = (id) => document.getElementById(id);

// A section's status line: the text as it is; marked "error" (red) when it says what went wrong,
// else "ok" when it says anything at all (an empty line is neither).
export function say(id, text, isError = false) {
  const box = $(id);
  box.textContent = text;
  box.classList.toggle("error", isError);
  box.classList.toggle("ok", !isError && Boolean(text));
}

// `say` for a section with one status line: `const status = statusLine("acw-status")`.
export function statusLine(id) {
  return (text, isError = false) => say(id, text, isError);
}

// A table cell that names its column: the label is shown before the value when the table folds
// into cards on a narrow screen (people.css, releases.css).
export function cell(label, text) {
  const td = Object.assign(document.createElement("td"), { textContent: text });
  td.dataset.label = label;
  return td;
}

// A row's button: `label` is what a screen reader says ("Edit user agent1"), as the rows'
// buttons all read the same ("Edit") to the eye.
export function button(text, label, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: text });
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

export function option(value, text) {
  return Object.assign(document.createElement("option"), { value, textContent: text });
}
