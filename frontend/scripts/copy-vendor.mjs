// Copy the browser modules the pages import from node_modules into static/vendor/ (git-ignored),
// where Django's static files serve them: no CDN, no bundler.
//
//   @niivue/niivue dist/index.js        ->  static/vendor/niivue/niivue.js   (prediction viewer)
//   uplot dist/uPlot.esm.js, uPlot.min.css ->  static/vendor/uplot/          (run dashboard charts)
//   @dagrejs/dagre dist/dagre.esm.js    ->  static/vendor/dagre/dagre.js     (graph layout of DAGs)
//   uppy dist/uppy.min.mjs, uppy.min.css ->  static/vendor/uppy/             (resumable uploads: the
//                                           official bundle of @uppy/core, @uppy/tus, @uppy/dashboard)
//
// Each is a self-contained ES module (no bare imports), so the pages import it by relative URL.
//
// Run by `npm run build` (scripts/test, scripts/run-demo and the Dockerfile run it after `npm ci`).
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const copies = [
  { pkg: '@niivue/niivue', from: 'dist/index.js', to: 'static/vendor/niivue/niivue.js' },
  { pkg: 'uplot', from: 'dist/uPlot.esm.js', to: 'static/vendor/uplot/uPlot.esm.js' },
  { pkg: 'uplot', from: 'dist/uPlot.min.css', to: 'static/vendor/uplot/uPlot.min.css' },
  { pkg: '@dagrejs/dagre', from: 'dist/dagre.esm.js', to: 'static/vendor/dagre/dagre.js' },
  { pkg: 'uppy', from: 'dist/uppy.min.mjs', to: 'static/vendor/uppy/uppy.min.mjs' },
  { pkg: 'uppy', from: 'dist/uppy.min.css', to: 'static/vendor/uppy/uppy.min.css' },
];

for (const { pkg, from, to } of copies) {
  const pkgDir = join(root, 'node_modules', ...pkg.split('/'));
  let version;
  try {
    version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
  } catch {
    console.error(`copy-vendor: ${pkg} is not installed; run \`npm ci\` in frontend/ first`);
    process.exit(1);
  }
  const source = join(pkgDir, from);
  const target = join(root, to);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
  writeFileSync(`${target}.version`, `${pkg}@${version}\n`);
  console.log(`copy-vendor: ${pkg}@${version} ${from} -> ${to} (${statSync(target).size} bytes)`);
}
