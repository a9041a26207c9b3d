// Architecture and comparison pages: draw each embedded genotype, with one legend for all.
import { drawGenotype, drawLegend } from './graph.js';

const ops = new Set();
const styles = new Set();
for (const box of document.querySelectorAll('[data-genotype-id]')) {
  const script = document.getElementById(box.dataset.genotypeId);
  if (!script) continue;
  const doc = JSON.parse(script.textContent);
  const drawn = drawGenotype(box, doc, { height: box.classList.contains('compare-graph') ? 260 : 360 });
  drawn.ops.forEach((op) => ops.add(op));
  drawn.styles.forEach((s) => styles.add(s));
}
drawLegend(document.getElementById('graph-legend'), { ops, styles });
