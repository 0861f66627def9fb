// The rating queue's keyboard: r focuses the reason, each judge button's data-key presses it; a sent judgement disables the buttons.
(() => {
  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "r") { const field = document.getElementById("reason"); if (field) { field.focus(); event.preventDefault(); } return; }
    const button = document.querySelector(`#judge-form button[data-key="${CSS.escape(event.key)}"]`);
    if (button && !button.disabled) { event.preventDefault(); button.click(); }
  });
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt.id === "judge-form") event.detail.elt.querySelectorAll("button").forEach((b) => b.disabled = true);
  });
})();
