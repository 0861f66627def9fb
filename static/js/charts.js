// Draws every element with data-figure="<plotly figure JSON>" with the vendored plotly.js, on load and
// after htmx swaps new ones in.
(function () {
  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-figure]:not(.js-plotly-plot)").forEach((node) => {
      const figure = JSON.parse(node.dataset.figure);
      window.Plotly.newPlot(node, figure.data, figure.layout, {displaylogo: false, responsive: true});
    });
  }
  document.addEventListener("DOMContentLoaded", () => draw(document));
  document.addEventListener("htmx:afterSettle", (event) => draw(event.target));
})();
