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
