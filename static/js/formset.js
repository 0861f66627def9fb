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
