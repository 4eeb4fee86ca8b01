// A patient's scores over time, with the response and remission lines of the definition outcomes judged by
// (sent with the figures; the lines are not worked out here). Chart.js is served by this console.
(function () {
  if (typeof Chart === "undefined") return;
  document.querySelectorAll("canvas.outcome-chart").forEach(function (canvas) {
    const source = document.getElementById(canvas.id + "-data");
    if (!source) return;
    const data = JSON.parse(source.textContent);
    const labels = data.points.map((p) => p.x);
    const flat = (value) => labels.map(() => value);
    const datasets = [
      { label: data.label, data: data.points.map((p) => p.y), borderColor: "#0b5394", backgroundColor: "#0b5394" },
    ];
    if (data.response !== null) {
      datasets.push({ label: "Response (at or below)", data: flat(data.response), borderColor: "#7a4b00", borderDash: [6, 4], pointRadius: 0 });
    }
    if (data.remission !== null) {
      datasets.push({ label: "Remission (below)", data: flat(data.remission), borderColor: "#1e6b2f", borderDash: [2, 3], pointRadius: 0 });
    }
    new Chart(canvas, {
      type: "line",
      data: { labels: labels, datasets: datasets },
      options: { animation: false, scales: { y: { beginAtZero: true, title: { display: true, text: "score" } } } },
    });
  });
})();
