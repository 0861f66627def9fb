// The experiment builder's evaluator rows: show the fields of the chosen kind only, and fill the rubric from
// the library when one is picked. Without JavaScript every kind's fields show, and the form works the same.
(function () {
  const rows = document.getElementById("evaluator-rows");
  if (!rows) return;
  const libraryNode = document.getElementById("rubric-library");
  const library = {};
  (libraryNode ? JSON.parse(libraryNode.textContent) : []).forEach((rubric) => { library[rubric.key] = rubric; });

  function showKind(row) {
    const kind = row.querySelector("select[name$='-kind']")?.value || "";
    row.querySelectorAll("fieldset[data-kinds]").forEach((group) => {
      group.hidden = !group.dataset.kinds.split(" ").includes(kind);
    });
  }

  function setIfPresent(row, suffix, value) {
    const field = row.querySelector(`[name$='-${suffix}']`);
    if (field && value !== undefined && value !== null) field.value = value;
  }

  function pickRubric(row, key) {
    const rubric = library[key];
    if (!rubric) return;
    setIfPresent(row, "rubric", rubric.text);
    setIfPresent(row, "scale_min", rubric.scale_min);
    setIfPresent(row, "scale_max", rubric.scale_max);
    setIfPresent(row, "pass_at", rubric.pass_at);
    const name = row.querySelector("input[name$='-name']");
    if (name && !name.value) name.value = rubric.key;
  }

  document.addEventListener("change", (event) => {
    const row = event.target.closest("[data-evaluator-row]");
    if (!row) return;
    if (event.target.name?.endsWith("-kind")) showKind(row);
    if (event.target.name?.endsWith("-rubric_preset")) pickRubric(row, event.target.value);
  });

  rows.querySelectorAll("[data-evaluator-row]").forEach(showKind);
  new MutationObserver((changes) => changes.forEach((change) => change.addedNodes.forEach((node) => {
    if (node.nodeType !== 1 || !node.matches("[data-evaluator-row]")) return;
    showKind(node);
    if (window.htmx) window.htmx.process(node);
  }))).observe(rows, { childList: true });
})();
