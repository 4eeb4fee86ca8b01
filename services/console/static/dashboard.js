// The network dashboard's chart: the figures come from the page itself (the JSON beside the canvas), and
// Chart.js is served by this console. A rate not worked out (no shown counts) is left as a gap, not a 0.
(function () {
  const source = document.getElementById("chart-data");
  const canvas = document.getElementById("rates-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Response %", data: data.response, backgroundColor: "#0b5394" },
        { label: "Remission %", data: data.remission, backgroundColor: "#1e6b2f" },
      ],
    },
    options: { animation: false, scales: { y: { beginAtZero: true, max: 100, title: { display: true, text: "%" } } } },
  });
})();
