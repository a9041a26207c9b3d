// Renders a "scene" (plain data: boxes, edges, nodes, labels, each with a stable key) into one
// SVG, reusing the elements whose key it already drew: a live snapshot of the same architecture
// updates positions and styles in place (CSS transitions animate them) instead of redrawing.
const SVG = 'http://www.w3.org/2000/svg';

/**
 * @typedef {{key: string, tag?: string, attrs: object, title?: string, text?: string}} Item
 *   ``tag``: SVG element name; ``attrs``: its attributes (class, data-*, geometry);
 *   ``title``: hover text (an SVG <title> and the hover line); ``text``: text content
 * @typedef {{width: number, height: number, title: string, boxes: Item[], edges: Item[], nodes: Item[], labels: Item[]}} Scene
 */

const LAYERS = [['boxes', 'rect'], ['edges', 'path'], ['nodes', 'circle'], ['labels', 'text']];

function make(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.append(node);
  return node;
}

function update(element, item) {
  const keep = new Set(['data-key']);
  for (const [k, v] of Object.entries(item.attrs)) {
    keep.add(k);
    if (v === null || v === undefined) element.removeAttribute(k);
    else if (element.getAttribute(k) !== String(v)) element.setAttribute(k, v);
  }
  for (const { name } of [...element.attributes]) if (!keep.has(name)) element.removeAttribute(name);
  if (item.text !== undefined) {
    if (element.firstChild && element.firstChild.nodeType === Node.TEXT_NODE) element.firstChild.nodeValue = item.text;
    else element.prepend(document.createTextNode(item.text));
  }
  let title = element.querySelector(':scope > title');
  if (item.title) {
    if (!title) title = make('title', {}, element);
    title.textContent = item.title;
    element.dataset.info = item.title;
  } else if (title) {
    title.remove();
  }
}

/**
 * Draw ``scene`` into ``container``. The first call makes the SVG; later calls keep every
 * element whose key is still in the scene (updating it), add the new ones and drop the rest.
 * @param {HTMLElement} container
 * @param {Scene} scene
 * @returns {SVGSVGElement}
 */
export function renderScene(container, scene) {
  let svg = container.querySelector(':scope > svg.arch-svg');
  if (!svg) {
    svg = make('svg', { class: 'arch-svg', role: 'img' });
    make('title', {}, svg);
    for (const [layer] of LAYERS) make('g', { class: layer }, svg);
    const hover = document.createElement('p');
    hover.className = 'graph-hover small muted';
    hover.textContent = 'Hover an edge or node for its op and weights.';
    svg.addEventListener('pointerover', (event) => {
      const target = event.target.closest('[data-info]');
      if (target) hover.textContent = target.dataset.info;
    });
    container.replaceChildren(svg, hover);
    svg.dataset.updates = '0';
  } else {
    svg.dataset.updates = String(Number(svg.dataset.updates) + 1);
  }
  svg.setAttribute('viewBox', `0 0 ${scene.width} ${scene.height}`);
  svg.setAttribute('width', scene.width);
  svg.setAttribute('height', scene.height);
  svg.querySelector(':scope > title').textContent = scene.title;
  for (const [layer, defaultTag] of LAYERS) {
    const group = svg.querySelector(`:scope > g.${layer}`);
    const existing = new Map([...group.children].map((child) => [child.dataset.key, child]));
    const wanted = scene[layer] || [];
    let previous = null;
    for (const item of wanted) {
      const tag = item.tag || defaultTag;
      let element = existing.get(item.key);
      if (element && element.localName !== tag) { element.remove(); element = null; }
      if (!element) {
        element = make(tag);
        element.dataset.key = item.key;
      }
      existing.delete(item.key);
      update(element, item);
      // keep the scene's order (later items paint over earlier ones)
      const next = previous ? previous.nextSibling : group.firstChild;
      if (element !== next) group.insertBefore(element, next);
      previous = element;
    }
    for (const stale of existing.values()) stale.remove();
  }
  return svg;
}
