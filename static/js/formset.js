// Adds a row to a Django formset: a button with data-add="<prefix>" clones <template id="<prefix>-empty">.
(function () {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-add]");
    if (!button) return;
    const prefix = button.dataset.add;
    const total = document.querySelector(`input[name='${prefix}-TOTAL_FORMS']`);
    const index = parseInt(total.value, 10);
    const html = document.getElementById(`${prefix}-empty`).innerHTML.replace(/__prefix__/g, index);
    const rows = document.getElementById(`${prefix}-rows`);
    rows.insertAdjacentHTML("beforeend", html);
    total.value = index + 1;
    const first = rows.lastElementChild.querySelector("input, select");
    if (prefix === "variant" && first) first.value = String.fromCharCode(65 + index);
    rows.lastElementChild.querySelector("select, input")?.focus();
  });
})();

// A row's Remove box (data-remove-row) hides the row; the form still posts it, marked for deletion.
(function () {
  document.addEventListener("change", (event) => {
    const box = event.target.closest("input[data-remove-row]");
    if (box) box.closest("[data-row]").hidden = box.checked;
  });
})();
