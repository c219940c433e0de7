// lockstep ui: selection of runs to compare, filters that apply as they change, and live
// updates (parts of a page re-fetched, logs grown by what was appended) while runs are in
// progress. lockstep's own script, served from the binary; no libraries.
"use strict";

const selected = new Set();

function updateCompareButton() {
  const button = document.getElementById("compare");
  if (!button) return;
  button.disabled = selected.size < 2;
  button.textContent = selected.size < 2 ? "compare selected" : `compare ${selected.size} runs`;
}

function bindSelection(root) {
  for (const box of root.querySelectorAll("input.select")) {
    box.checked = selected.has(box.value);
    box.addEventListener("change", () => {
      if (box.checked) selected.add(box.value); else selected.delete(box.value);
      updateCompareButton();
    });
  }
}

// A part of the page with data-live="URL" is fetched again every two seconds and replaced
// when it changed (the first time too: the run may have moved on since the page was
// served); the new part says by its own data-live whether to go on.
function follow(id) {
  let last = null;
  const tick = async () => {
    const element = document.getElementById(id);
    if (!element || !element.dataset.live) return;
    try {
      const response = await fetch(element.dataset.live, { credentials: "same-origin" });
      if (response.ok) {
        const text = await response.text();
        if (text !== last) {
          element.outerHTML = text;
          const fresh = document.getElementById(id);
          if (fresh) bindSelection(fresh);
        }
        last = text;
      }
    } catch (e) {
      // The server is gone or busy: try again at the next tick.
    }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
}

// A log with data-live="1" grows by what the run appends, from data-offset on.
function followLog(pre) {
  if (pre.dataset.live !== "1") return;
  const tick = async () => {
    try {
      const response = await fetch(`${pre.dataset.log}?offset=${pre.dataset.offset}`, { credentials: "same-origin" });
      if (response.ok) {
        const text = await response.text();
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        if (text) pre.append(document.createTextNode(text));
        if (atBottom) pre.scrollTop = pre.scrollHeight;
        pre.dataset.offset = response.headers.get("X-Log-Offset") || pre.dataset.offset;
        if (response.headers.get("X-Run-Live") === "0") {
          pre.dataset.live = "0";
          return;
        }
      }
    } catch (e) {
      // Try again at the next tick.
    }
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  bindSelection(document);
  updateCompareButton();
  const compare = document.getElementById("compare");
  if (compare) {
    compare.addEventListener("click", () => {
      if (selected.size >= 2) location.href = `/compare?runs=${[...selected].join(",")}`;
    });
  }
  for (const select of document.querySelectorAll("form.filters select")) {
    select.addEventListener("change", () => select.form.submit());
  }
  const only = document.getElementById("only-differences");
  if (only) {
    only.addEventListener("change", () => {
      document.querySelector("table.values").classList.toggle("only-differences", only.checked);
    });
  }
  for (const id of ["runs", "live"]) follow(id);
  for (const pre of document.querySelectorAll("pre.log")) followLog(pre);
});
