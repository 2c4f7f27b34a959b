/* closeout workbench: the little behaviour pages need, kept out of the HTML so the Content
   Security Policy can forbid inline script. */
"use strict";
document.addEventListener("change", (event) => {
  const box = event.target;
  // The queue's "select page" box ticks or clears every document box of the page.
  if (box instanceof HTMLInputElement && box.id === "select-page") {
    document.querySelectorAll("input[name=numbers]").forEach((c) => { c.checked = box.checked; });
  }
});

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
