// The prompt editor: kind switch, add / remove / reorder chat messages. The form works without it.
(function () {
  const form = document.getElementById("editor");
  if (!form) return;
  const list = document.getElementById("messages-list");
  const total = form.querySelector("input[name='msg-TOTAL_FORMS']");
  const changed = () => form.dispatchEvent(new Event("editor-changed"));

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
      added.querySelector("textarea").focus();
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
})();
