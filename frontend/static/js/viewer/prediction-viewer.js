// The result viewer: the input volume with the predicted label map overlaid, in NiiVue
// (@niivue/niivue's self-contained ES module, served from /static/vendor/, no CDN).
//
// The label map gets a discrete colour table (one colour per class, background transparent,
// the same colours as the legend); the opacity slider sets the overlay's opacity.
// When the first frame is drawn the canvas gets data-ready="true" (tests wait for it).

const config = JSON.parse(document.getElementById('viewer-config').textContent);
const canvas = document.getElementById('viewer-canvas');
const message = document.getElementById('viewer-message');
const slider = document.getElementById('overlay-opacity');
const sliderValue = document.getElementById('overlay-opacity-value');
const sliceSelect = document.getElementById('slice-type');

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
    crosshairColor: [1, 1, 1, 0.5],
    crosshairWidth: 1,
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
    sliceSelect.addEventListener('change', () => nv.setSliceType(types[sliceSelect.value]));
  }
  // Ready once a frame with both volumes has been drawn.
  requestAnimationFrame(() => requestAnimationFrame(() => {
    canvas.dataset.opacity = String(opacity);
    canvas.dataset.ready = 'true';
    say('Scroll or click to move through the volume; the legend shows the class colours.');
  }));
}

main().catch((err) => say(`The viewer failed: ${err.message}`, true));
