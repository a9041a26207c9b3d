// Architecture and comparison pages: draw each embedded genotype.
import { drawGenotype, drawLegend } from './graph.js';

const ops = new Set();
for (const box of document.querySelectorAll('[data-genotype-id]')) {
  const script = document.getElementById(box.dataset.genotypeId);
  if (!script) continue;
  const doc = JSON.parse(script.textContent);
  for (const op of drawGenotype(box, doc, { height: box.classList.contains('compare-graph') ? 260 : 360 })) ops.add(op);
}
drawLegend(document.getElementById('graph-legend'), ops);
