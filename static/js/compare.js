// The compare page's keyboard: j/k between items, h/l between outputs, 0-9 / u / d rate the focused output.
(() => {
  const items = () => Array.from(document.querySelectorAll(".compare-item"));
  const current = () => document.activeElement && document.activeElement.closest(".compare-item");
  function focusItem(item) { if (!item) return; const cell = item.querySelector(".compare-cell"); (cell || item).focus(); item.scrollIntoView({block: "start"}); }
  function moveItem(step) { const list = items(); const at = list.indexOf(current()); focusItem(list[Math.min(Math.max(at + step, 0), list.length - 1)] || list[0]); }
  function moveCell(step) { const item = current(); if (!item) return focusItem(items()[0]); const cells = Array.from(item.querySelectorAll(".compare-cell")); const at = cells.indexOf(document.activeElement.closest(".compare-cell")); const next = cells[Math.min(Math.max(at + step, 0), cells.length - 1)]; if (next) next.focus(); }
  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (key === "j" || key === "ArrowDown") { moveItem(1); event.preventDefault(); }
    else if (key === "k" || key === "ArrowUp") { moveItem(-1); event.preventDefault(); }
    else if (key === "l" || key === "ArrowRight") { moveCell(1); event.preventDefault(); }
    else if (key === "h" || key === "ArrowLeft") { moveCell(-1); event.preventDefault(); }
    else {
      const cell = document.activeElement && document.activeElement.closest(".compare-cell");
      if (!cell) return;
      let button = null;
      if (/^[0-9]$/.test(key)) button = cell.querySelector(`button[data-score="${key}"]`);
      else if (key === "u") button = cell.querySelector('button[data-thumb="up"]');
      else if (key === "d") button = cell.querySelector('button[data-thumb="down"]');
      if (button) { event.preventDefault(); button.click(); }
    }
  });
  // After htmx swaps a rated output, keep the keyboard focus on it.
  let lastCard = null;
  document.body.addEventListener("htmx:beforeRequest", (event) => { const card = event.detail.elt.closest(".compare-cell"); lastCard = card ? card.id : null; });
  document.body.addEventListener("htmx:afterSettle", () => { if (lastCard) { const card = document.getElementById(lastCard); if (card) card.focus(); } });
})();
