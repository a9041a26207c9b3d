// The comparison workspace: the picked runs' and models' curves overlaid (one series per item,
// the run page's uPlot charts), each chart downloadable as PNG, SVG or CSV, and the picked
// architectures drawn with one legend. The tables' CSV are server downloads (plain links).
import { SeriesChart, download as save } from '../runs/charts.js';
import { drawGenotype, drawLegend } from '../runs/graph.js';
import { chartSvg } from './svg-chart.js';

const charts = new Map();
const data = JSON.parse(document.getElementById('compare-charts-data').textContent);
const slug = (document.getElementById('compare-title')?.textContent || 'comparison').trim().toLowerCase().replace(/[^a-z0-9]+/g, '-');

for (const spec of data) {
  const box = document.getElementById(`compare-chart-${spec.id}`);
  if (!box) continue;
  const chart = new SeriesChart(box, {
    title: spec.title, log: Boolean(spec.log), range: spec.range || null, height: 260, filename: `${slug}-${spec.id}`,
  });
  for (const [name, points] of Object.entries(spec.series || {})) {
    for (const [x, y] of points) chart.add(name, x, y);
  }
  chart.render();
  charts.set(spec.id, chart);
}

document.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-chart]');
  if (!button) return;
  const chart = charts.get(button.dataset.chart);
  if (!chart) return;
  if (button.classList.contains('chart-png')) chart.downloadPng();
  else if (button.classList.contains('chart-csv')) chart.downloadCsv();
  else if (button.classList.contains('chart-svg')) save(new Blob([chartSvg(chart)], { type: 'image/svg+xml' }), `${chart.filename}.svg`);
});

window.addEventListener('resize', () => charts.forEach((c) => c.resize()));

const ops = new Set();
const styles = new Set();
for (const box of document.querySelectorAll('[data-genotype-id]')) {
  const script = document.getElementById(box.dataset.genotypeId);
  if (!script) continue;
  try {
    const drawn = drawGenotype(box, JSON.parse(script.textContent), { height: 260 });
    drawn.ops.forEach((op) => ops.add(op));
    drawn.styles.forEach((s) => styles.add(s));
  } catch (err) {
    box.textContent = `This architecture could not be drawn (${err.message}).`;
  }
}
const legend = document.getElementById('graph-legend');
if (legend) drawLegend(legend, { ops, styles });
document.body.dataset.compareReady = 'true';
