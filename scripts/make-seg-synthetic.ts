// Writes the embedded long-tailed segmentation set of tasks/ade20k.ts to disk in the ADE20K layout
// (images/{training,validation}/*.png, annotations/{training,validation}/*.png with class c stored as
// c + 1, 0 unused), so it can be inspected or read back with --data-root-style loaders. The set is a
// pure function of (seed, index): segmentation/synthetic.ts.
// Run from the repository root:
//   npx esbuild scripts/make-seg-synthetic.ts --bundle --platform=node --format=esm \
//     --packages=external --outfile=/tmp/mk-seg.mjs && node /tmp/mk-seg.mjs OUT_DIR [train=480] [test=120] [seed=0] [size=48]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeLabelPng, encodeRgbPng } from '../data/ade20k.js';
import { syntheticClasses, syntheticSample } from '../segmentation/synthetic.js';

const [out, nTrain = '480', nTest = '120', seedArg = '0', sizeArg = '48'] = process.argv.slice(2);
if (!out) {
  console.error('usage: node /tmp/mk-seg.mjs OUT_DIR [train=480] [test=120] [seed=0] [size=48]');
  process.exit(1);
}
const seed = Number(seedArg), size = Number(sizeArg);
// the task draws its training scenes from seed 2·s + 1 and its test scenes from 2·s + 2
for (const [split, n, s] of [['training', Number(nTrain), 2 * seed + 1], ['validation', Number(nTest), 2 * seed + 2]] as const) {
  mkdirSync(join(out, 'images', split), { recursive: true });
  mkdirSync(join(out, 'annotations', split), { recursive: true });
  for (let i = 0; i < n; i++) {
    const x = syntheticSample(s, i, { size });
    const name = `scene_${String(i).padStart(4, '0')}`;
    writeFileSync(join(out, 'images', split, `${name}.png`), encodeRgbPng({ width: x.width, height: x.height, data: x.image }));
    writeFileSync(join(out, 'annotations', split, `${name}.png`), encodeLabelPng(x.label, x.width, x.height, { addOne: true }));
  }
}
writeFileSync(join(out, 'classes.json'), JSON.stringify(syntheticClasses(), null, 1));
console.log(`wrote ${nTrain} + ${nTest} scenes of ${size}×${size} to ${out}`);
