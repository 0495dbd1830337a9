// The jobs chart: queue depths (left axis) and jobs finished per second (right axis) over the last hour,
// from the scheduler's samples (GET /api/jobs/series), drawn by the vendored uPlot.
import uPlot from "/static/vendor/uplot@1.6.32/uPlot.esm.js";

const COLORS = { high: "#d92d20", default: "#1d5fd1", low: "#667085", rate: "#067647" };

export function queueChart(el) {
  let plot = null;
  const width = () => Math.max(280, el.clientWidth - 10);
  const options = () => ({
    width: width(), height: 220,
    series: [
      {},
      { label: "high", stroke: COLORS.high, width: 2, scale: "n" },
      { label: "default", stroke: COLORS.default, width: 2, scale: "n" },
      { label: "low", stroke: COLORS.low, width: 2, scale: "n" },
      { label: "jobs/s", stroke: COLORS.rate, width: 2, dash: [6, 4], scale: "rate" },
    ],
    scales: { x: { time: true, range: (u, min, max) => [max - 3600, max] }, n: { range: (u, min, max) => [0, Math.max(5, max)] }, rate: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { scale: "n", label: "queued" }, { scale: "rate", side: 1, label: "jobs/s", grid: { show: false } }],
  });
  const onResize = () => { if (plot) plot.setSize({ width: width(), height: 220 }); };
  window.addEventListener("resize", onResize);

  return {
    update(series) {
      if (!series || !el.isConnected) return;
      const points = series.points;
      const data = [points.map((p) => p.t), ...["high", "default", "low"].map((q) => points.map((p) => p.queued[q] ?? 0)),
        points.map((p) => p.jobs_per_second)];
      if (!plot) plot = new uPlot(options(), data, el);
      else plot.setData(data);
    },
    destroy() { window.removeEventListener("resize", onResize); if (plot) plot.destroy(); },
  };
}
