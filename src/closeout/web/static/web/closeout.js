/* closeout workbench: the little behaviour pages need, kept out of the HTML so the Content
   Security Policy can forbid inline script. */
"use strict";

document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement)) return;
  // The queue's "select page" box ticks or clears every document box of the page.
  if (box.id === "select-page") {
    document.querySelectorAll("input[name=numbers]").forEach((c) => { c.checked = box.checked; });
  }
  // The column chooser hides or shows a column; the choice is kept per document type.
  if (box.dataset.column) {
    showColumn(box.dataset.column, box.checked);
    saveColumns();
  }
});

function columnsKey() { return "closeout.columns." + location.pathname; }

function showColumn(key, shown) {
  document.querySelectorAll(`#queue-table [data-column="${key}"]`).forEach((cell) => {
    cell.classList.toggle("col-hidden", !shown);
  });
}

function saveColumns() {
  const hidden = [...document.querySelectorAll("#column-chooser input[data-column]")]
    .filter((b) => !b.checked).map((b) => b.dataset.column);
  try { localStorage.setItem(columnsKey(), JSON.stringify(hidden)); } catch (e) { /* private mode */ }
}

function restoreColumns() {
  let hidden = [];
  try { hidden = JSON.parse(localStorage.getItem(columnsKey()) || "[]"); } catch (e) { hidden = []; }
  hidden.forEach((key) => {
    const box = document.querySelector(`#column-chooser input[data-column="${key}"]`);
    if (box) { box.checked = false; showColumn(key, false); }
  });
}

/* Keyboard: j/k move through the rows of a list, Enter opens, x ticks, / searches,
   a approves (inbox), ? shows the keys. Never while typing in a field. */
let current = -1;

function rows() { return [...document.querySelectorAll("[data-keys=rows] tbody tr")].filter((r) => r.querySelector("a, input")); }

function move(step) {
  const all = rows();
  if (!all.length) return;
  current = Math.max(0, Math.min(all.length - 1, current + step));
  all.forEach((r, i) => r.classList.toggle("kb-current", i === current));
  const row = all[current];
  const link = row.querySelector("a");
  (link || row.querySelector("input")).focus();
}

function currentRow() { return current >= 0 ? rows()[current] : null; }

function typing(target) {
  return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement || (target instanceof HTMLElement && target.isContentEditable);
}

function toggleHelp(show) {
  const help = document.getElementById("kb-help");
  if (!help) return;
  help.hidden = show === undefined ? !help.hidden : !show;
  if (!help.hidden) help.querySelector("button").focus();
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape") { toggleHelp(false); return; }
  if (typing(event.target)) return;
  const row = currentRow();
  switch (event.key) {
    case "j": move(1); break;
    case "k": move(-1); break;
    case "x": {
      const box = row && row.querySelector("input[type=checkbox]");
      if (box) box.click();
      break;
    }
    case "/": {
      const search = document.querySelector("[data-search]") || document.getElementById("id_number");
      if (search) { search.focus(); event.preventDefault(); }
      return;
    }
    case "a": {
      // Approve: tick the row and choose "approve"; the Decide button then confirms it.
      const box = row && row.querySelector("input[name=requests]");
      const decision = document.getElementById("id_decision");
      if (!box || !decision) return;
      box.checked = true;
      decision.value = "approve";
      document.getElementById("decide-go").focus();
      break;
    }
    case "?": toggleHelp(); break;
    default: return;
  }
  event.preventDefault();
});

document.addEventListener("click", (event) => {
  if (event.target instanceof HTMLElement && event.target.closest("[data-close-help]")) toggleHelp(false);
});

document.addEventListener("DOMContentLoaded", restoreColumns);

/* Free-text fields with a length limit show how many characters are left ("123 / 2000"). */
function showCount(area) {
  const counter = document.getElementById(`${area.id}-count`);
  if (counter) { counter.textContent = `${area.value.length} / ${area.maxLength}`; }
}
function addCounters() {
  document.querySelectorAll("textarea[data-counter]").forEach((area) => {
    if (!document.getElementById(`${area.id}-count`)) {
      const counter = document.createElement("small");
      counter.id = `${area.id}-count`;
      counter.className = "counter";
      counter.setAttribute("aria-live", "polite");
      area.insertAdjacentElement("afterend", counter);
    }
    showCount(area);
  });
}
document.addEventListener("DOMContentLoaded", addCounters);
document.addEventListener("htmx:afterSettle", addCounters);
document.addEventListener("input", (event) => {
  if (event.target instanceof HTMLTextAreaElement && event.target.dataset.counter) {
    showCount(event.target);
  }
});

/* A button with data-confirm asks before its form is sent: the text says what will happen. */
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button instanceof HTMLElement && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
