// Behaviour every page shares, bound here instead of inline handlers (the Content-Security-Policy allows
// no inline script): <form data-confirm="…"> asks before submitting; <select data-autosubmit> submits its
// form on change (data-clear="name" empties that field first); an element with data-reload-page that
// htmx swaps in reloads the page.
(function () {
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);

  document.addEventListener("change", (event) => {
    const select = event.target.closest("[data-autosubmit]");
    if (!select || !select.form) return;
    if (select.dataset.clear && select.form.elements[select.dataset.clear]) {
      select.form.elements[select.dataset.clear].value = "";
    }
    select.form.requestSubmit();
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    if (document.querySelector("[data-reload-page]")) window.location.reload();
  });
})();
