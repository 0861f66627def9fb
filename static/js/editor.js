// The prompt editor: kind switch, add / remove / reorder chat messages. The form works without it.
(function () {
  const form = document.getElementById("editor");
  if (!form) return;
  const list = document.getElementById("messages-list");
  const total = form.querySelector("input[name='msg-TOTAL_FORMS']");
  const changed = () => form.dispatchEvent(new Event("editor-changed"));
  let attachEditor = null; // set below when the code editor is loaded

  function renumber() {
    let position = 1;
    list.querySelectorAll("[data-message-row]").forEach((row) => {
      if (row.hidden) return;
      row.querySelector("[data-order]").value = position++;
    });
  }

  function showKind() {
    const chat = form.querySelector("input[name='kind']:checked")?.value === "chat";
    document.getElementById("chat-section").hidden = !chat;
    document.getElementById("text-section").hidden = chat;
  }

  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") showKind();
    if (event.target.name && event.target.name.endsWith("-DELETE")) {
      event.target.closest("[data-message-row]").hidden = event.target.checked;
      renumber();
    }
  });

  form.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("[data-message-row]");
    if (button.dataset.action === "add-message") {
      const index = parseInt(total.value, 10);
      const html = document.getElementById("message-empty").innerHTML.replace(/__prefix__/g, index);
      list.insertAdjacentHTML("beforeend", html);
      total.value = index + 1;
      const added = list.lastElementChild;
      const roleSelect = added.querySelector("select");
      if (roleSelect) roleSelect.value = "user";
      added.querySelectorAll("input[type=checkbox]").forEach((box) => box.classList.add("visually-hidden"));
      renumber();
      const area = added.querySelector("textarea");
      if (attachEditor) attachEditor(area, "Message content");
      (added.querySelector(".cm-content") || area).focus();
    } else if (button.dataset.action === "up" && row.previousElementSibling) {
      row.parentNode.insertBefore(row, row.previousElementSibling);
      renumber();
      button.focus();
    } else if (button.dataset.action === "down" && row.nextElementSibling) {
      row.parentNode.insertBefore(row.nextElementSibling, row);
      renumber();
      button.focus();
    } else {
      return;
    }
    changed();
  });

  list.querySelectorAll("[data-message-row] input[type=checkbox]").forEach((box) => box.classList.add("visually-hidden"));
  renumber();

  // --- The code editor (static/vendor/codemirror, built from static/src/editor). Without it, or without
  // JavaScript, the plain textareas are the editor and save the same way.
  if (!window.StudioCodeMirror) return;
  const checkUrl = form.dataset.checkUrl;
  const filtersNode = document.getElementById("editor-filters");
  const filters = filtersNode ? JSON.parse(filtersNode.textContent) : [];
  const csrf = form.querySelector("input[name='csrfmiddlewaretoken']")?.value || "";
  const found = new WeakMap(); // textarea -> the variables its last check found

  function declaredVariables() {
    const byName = new Map();
    document.querySelectorAll("#variables tbody tr[id^='var-']").forEach((row) => {
      const name = row.id.slice(4);
      byName.set(name, {
        name,
        type: row.querySelector("select")?.value || "",
        description: row.querySelector("input[name$='-description']")?.value || "",
      });
    });
    form.querySelectorAll("textarea.cm-source").forEach((area) => {
      (found.get(area) || []).forEach((name) => { if (!byName.has(name)) byName.set(name, { name }); });
    });
    return [...byName.values()];
  }

  function save() {
    const button = form.querySelector("button[name='intent'][value='save']");
    if (button) form.requestSubmit(button);
  }

  function preview() {
    form.dispatchEvent(new Event("editor-changed"));
  }

  function attach(area, label) {
    if (!area || area.classList.contains("cm-source")) return;
    area.classList.add("cm-source");
    window.StudioCodeMirror.create(area, {
      label,
      filters,
      variables: declaredVariables,
      onSave: save,
      onPreview: preview,
      check: async (source) => {
        if (!checkUrl) return [];
        try {
          const response = await fetch(checkUrl, {
            method: "POST",
            headers: { "X-CSRFToken": csrf },
            body: new URLSearchParams({ source }),
            credentials: "same-origin",
          });
          if (!response.ok) return [];
          const result = await response.json();
          found.set(area, result.variables || []);
          return result.problems || [];
        } catch (error) {
          return [];
        }
      },
    });
  }

  attach(form.querySelector("textarea[name='template']"), "Template");
  list.querySelectorAll("[data-message-row] textarea").forEach((area) => attach(area, "Message content"));
  attachEditor = attach;
})();
