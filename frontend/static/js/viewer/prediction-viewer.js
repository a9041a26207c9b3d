// The result viewer: the input volume with the predicted label map overlaid, in NiiVue
// (@niivue/niivue's self-contained ES module, served from /static/vendor/, no CDN).
//
// The label map gets a discrete colour table (one colour per class, background transparent,
// the same colours as the legend); the opacity slider sets the overlay's opacity.
// A DAST model's prediction also has attention maps: the chosen one (layer picker) is drawn
// above the segmentation as a heat map ('warm': orange to yellow, from uniform attention 1 up to the map's
// maximum; below 1 transparent) with its own opacity slider.
// When the first frame is drawn the canvas gets data-ready="true" (tests wait for it); it
// carries data-attention (the shown map's id) and data-attention-opacity once a map is drawn.
//
// The crosshair is thin and the "Crosshair" box hides it (data-crosshair="on"/"off" on the
// canvas). NiiVue draws the 2D crosshair as an opaque 3D bar one voxel wide by default, which
// covers the anatomy of a coarse volume; its width is set here in millimetres to about one and a
// half screen pixels of the shown slices (recomputed when the view or the window changes), and a
// width of 0 hides it. The legend's colour inputs
// recolour the overlay at once (data-rgb on each legend item and data-colours on the canvas
// follow); saving them for the model is the form's job (a POST of the same inputs).

const config = JSON.parse(document.getElementById('viewer-config').textContent);
const canvas = document.getElementById('viewer-canvas');
const message = document.getElementById('viewer-message');
const slider = document.getElementById('overlay-opacity');
const sliderValue = document.getElementById('overlay-opacity-value');
const sliceSelect = document.getElementById('slice-type');
const attentionSelect = document.getElementById('attention-layer');
const attentionSlider = document.getElementById('attention-opacity');
const attentionValue = document.getElementById('attention-opacity-value');
const crosshairToggle = document.getElementById('crosshair-toggle');
/** Light yellow: seen on grey anatomy and on every label colour. */
export const CROSSHAIR_COLOUR = [1, 1, 0.7, 1];
/** Screen pixels across the crosshair's lines. */
export const CROSSHAIR_PIXELS = 1.5;

/** Millimetres that make CROSSHAIR_PIXELS on the first 2D tile NiiVue laid out (1 if none). */
export function crosshairMillimetres(screenSlices, pixels = CROSSHAIR_PIXELS) {
  const tile = (screenSlices || []).find((t) => t && t.fovMM && Math.abs(t.fovMM[0]) > 0 && t.leftTopWidthHeight && t.leftTopWidthHeight[2] > 0);
  if (!tile) return 1;
  return pixels / (tile.leftTopWidthHeight[2] / Math.abs(tile.fovMM[0]));
}

/** "#rrggbb" -> [r, g, b] */
export function hexToRgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}
const ATTENTION_INDEX = 2; // input, label, then the heat map

/** NiiVue options of an attention map's volume: a heat map from uniform attention up. */
export function heatMapVolume(entry, opacity) {
  const top = Math.max(Number(entry.max) || 1, 1.0001);
  return { url: entry.url, name: entry.file, colormap: 'warm', opacity, cal_min: 1, cal_max: top };
}

/** NiiVue's label colour table: {R, G, B, A, I, labels}, class 0 transparent. */
export function labelColourTable(colours) {
  const table = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: ['background'] };
  for (const c of colours) {
    table.R.push(c.rgb[0]);
    table.G.push(c.rgb[1]);
    table.B.push(c.rgb[2]);
    table.A.push(255);
    table.I.push(c.value);
    table.labels.push(c.name);
  }
  return table;
}

function say(text, isError = false) {
  if (!message) return;
  message.textContent = text;
  message.classList.toggle('error', isError);
}

async function main() {
  let niivue;
  try {
    niivue = await import(config.niivueUrl);
  } catch (err) {
    say(`The viewer could not be loaded (${err.message}). The downloads still work.`, true);
    return;
  }
  const { Niivue, SLICE_TYPE } = niivue;
  const nv = new Niivue({
    backColor: [0, 0, 0, 1],
    crosshairColor: CROSSHAIR_COLOUR,
    crosshairWidth: 0, // hidden until it can be sized (below)
    crosshairWidthUnit: 'mm',
    show3Dcrosshair: false,
    isColorbar: false,
    dragAndDropEnabled: false,
    loadingText: 'loading the volume…',
    multiplanarForceRender: false,
  });
  try {
    await nv.attachToCanvas(canvas);
  } catch (err) {
    say(`This browser cannot show the viewer (WebGL2 is needed): ${err.message}`, true);
    return;
  }
  say('loading the volume and the segmentation…');
  const opacity = Number(slider ? slider.value : config.opacity);
  await nv.loadVolumes([
    { url: config.inputUrl, name: 'input.nii.gz', colormap: 'gray' },
    { url: config.labelUrl, name: 'label.nii.gz', opacity },
  ]);
  const overlay = nv.volumes[1];
  overlay.setColormapLabel(labelColourTable(config.colours));
  nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
  nv.updateGLVolume();
  window.voxelsearchViewer = nv;

  const maps = config.attention || [];
  const attentionOpacity = () => Number(attentionSlider ? attentionSlider.value : config.attentionOpacity);
  let shown = null;
  async function showAttention(id) {
    canvas.dataset.attentionReady = 'false';
    if (shown !== null && nv.volumes.length > ATTENTION_INDEX) nv.removeVolume(nv.volumes[ATTENTION_INDEX]);
    shown = null;
    const entry = maps.find((m) => m.id === id);
    if (entry) {
      await nv.addVolumeFromUrl(heatMapVolume(entry, attentionOpacity()));
      shown = entry.id;
    }
    nv.updateGLVolume();
    requestAnimationFrame(() => requestAnimationFrame(() => {
      canvas.dataset.attention = shown || '';
      canvas.dataset.attentionOpacity = String(attentionOpacity());
      canvas.dataset.attentionReady = 'true';
    }));
  }
  if (maps.length) {
    await showAttention(attentionSelect ? attentionSelect.value : maps[0].id);
    if (attentionSelect) attentionSelect.addEventListener('change', () => showAttention(attentionSelect.value));
    if (attentionSlider) {
      attentionSlider.addEventListener('input', () => {
        const value = attentionOpacity();
        if (shown !== null) nv.setOpacity(ATTENTION_INDEX, value);
        if (attentionValue) attentionValue.textContent = value.toFixed(2);
        canvas.dataset.attentionOpacity = String(value);
      });
    }
  }

  const crosshairOn = () => !crosshairToggle || crosshairToggle.checked;
  const sizeCrosshair = () => {
    nv.opts.crosshairWidthUnit = 'mm';
    nv.setCrosshairWidth(crosshairOn() ? crosshairMillimetres(nv.screenSlices) : 0);
    canvas.dataset.crosshair = crosshairOn() ? 'on' : 'off';
  };
  // The tiles exist once a frame is drawn; size the crosshair then, and again after changes.
  const resizeCrosshairSoon = () => requestAnimationFrame(() => requestAnimationFrame(sizeCrosshair));
  if (crosshairToggle) crosshairToggle.addEventListener('change', sizeCrosshair);
  window.addEventListener('resize', resizeCrosshairSoon);

  const colours = config.colours.map((c) => ({ ...c, rgb: [...c.rgb] }));
  canvas.dataset.colours = JSON.stringify(colours.map((c) => c.rgb));
  for (const input of document.querySelectorAll('.colour-input')) {
    input.addEventListener('input', () => {
      const entry = colours.find((c) => String(c.value) === input.dataset.labelValue);
      if (!entry) return;
      entry.rgb = hexToRgb(input.value);
      entry.hex = input.value;
      overlay.setColormapLabel(labelColourTable(colours));
      nv.updateGLVolume();
      const item = input.closest('li');
      if (item) item.dataset.rgb = entry.rgb.join(',');
      for (const swatch of document.querySelectorAll(`#volume-table tr[data-label-value="${entry.value}"] .swatch`)) swatch.style.background = entry.hex;
      canvas.dataset.colours = JSON.stringify(colours.map((c) => c.rgb));
    });
  }

  if (slider) {
    slider.addEventListener('input', () => {
      const value = Number(slider.value);
      nv.setOpacity(1, value);
      if (sliderValue) sliderValue.textContent = value.toFixed(2);
      canvas.dataset.opacity = String(value);
    });
  }
  if (sliceSelect) {
    const types = {
      multiplanar: SLICE_TYPE.MULTIPLANAR, axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL,
      sagittal: SLICE_TYPE.SAGITTAL, render: SLICE_TYPE.RENDER,
    };
    sliceSelect.addEventListener('change', () => { nv.setSliceType(types[sliceSelect.value]); resizeCrosshairSoon(); });
  }
  // Ready once a frame with both volumes has been drawn.
  requestAnimationFrame(() => requestAnimationFrame(() => {
    sizeCrosshair();
    canvas.dataset.opacity = String(opacity);
    canvas.dataset.ready = 'true';
    say('Scroll or click to move through the volume; the legend shows the class colours (click one to change it).');
  }));
}

main().catch((err) => say(`The viewer failed: ${err.message}`, true));
