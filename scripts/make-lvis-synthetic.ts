// Writes the embedded LVIS-like instance set (data/synthetic-lvis.ts) to disk, each split as
// OUT_DIR/{train,test}/annotations.json + PNG images (readable back with --lvis-json/--image-root),
// prints its per-frequency statistics, and draws OUT_DIR/contact-sheet.png: the first training
// images with every mask outlined in white.
// Run from the repository root:
//   npx esbuild scripts/make-lvis-synthetic.ts --bundle --platform=node --format=esm \
//     --outfile=/tmp/mk-lvis.mjs && node /tmp/mk-lvis.mjs OUT_DIR [seed=0] [train=600] [test=150]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRgbPng } from '../data/ade20k.js';
import { rleDecode, segmentationToRle } from '../data/masks.js';
import type { InstanceSet } from '../data/instance-sets.js';
import { writeInstanceSet } from '../data/node-instance-sets.js';
import { syntheticLvis } from '../data/synthetic-lvis.js';

const [out, seedArg = '0', nTrain = '600', nTest = '150'] = process.argv.slice(2);
if (!out) {
  console.error('usage: node /tmp/mk-lvis.mjs OUT_DIR [seed=0] [train=600] [test=150]');
  process.exit(1);
}
const t0 = Date.now();
const { train, test } = syntheticLvis({ seed: Number(seedArg), trainImages: Number(nTrain), testImages: Number(nTest) });
console.log(`generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
for (const [name, set] of [['train', train], ['test', test]] as const) console.log(`${name}: ${await writeInstanceSet(set, join(out, name))} (${set.dataset.images.length} images, ${set.dataset.annotations.length} instances)`);

// per frequency group: categories, and the min–max of training images and instances, test instances
const testInstances = new Map<number, number>();
for (const a of test.dataset.annotations) testInstances.set(a.categoryId, (testInstances.get(a.categoryId) ?? 0) + 1);
console.log('| group | categories | train images | train instances | test instances |\n| --- | --- | --- | --- | --- |');
for (const f of ['r', 'c', 'f'] as const) {
  const cs = train.dataset.categories.filter((c) => c.frequency === f);
  const range = (v: number[]) => (v.length ? `${Math.min(...v)}–${Math.max(...v)} (Σ ${v.reduce((a, b) => a + b, 0)})` : '–');
  console.log(`| ${f} | ${cs.length} | ${range(cs.map((c) => c.imageCount!))} | ${range(cs.map((c) => c.instanceCount!))} | ${range(cs.map((c) => testInstances.get(c.id) ?? 0))} |`);
}

/** Up to 12 images in a 4-wide grid of 150 px cells, masks outlined. */
async function contactSheet(set: InstanceSet): Promise<Uint8Array> {
  const cell = 150, cols = 4, images = set.dataset.images.slice(0, 12);
  const W = cols * cell, H = Math.ceil(images.length / cols) * cell;
  const sheet = new Uint8Array(W * H * 3).fill(255);
  for (const [k, im] of images.entries()) {
    const px = await set.pixels(im);
    const ox = (k % cols) * cell, oy = Math.floor(k / cols) * cell, plane = im.width * im.height;
    const at = (x: number, y: number) => ((oy + y) * W + ox + x) * 3;
    for (let y = 0; y < im.height; y++) for (let x = 0; x < im.width; x++) for (let c = 0; c < 3; c++) sheet[at(x, y) + c] = Math.round(px[c * plane + y * im.width + x] * 255);
    for (const a of set.dataset.annotations.filter((x) => x.imageId === im.id)) {
      const m = rleDecode(segmentationToRle(a.segmentation!, im.height, im.width));
      const on = (x: number, y: number) => x >= 0 && y >= 0 && x < im.width && y < im.height && m[x * im.height + y] === 1;
      for (let y = 0; y < im.height; y++) for (let x = 0; x < im.width; x++) if (on(x, y) && !(on(x - 1, y) && on(x + 1, y) && on(x, y - 1) && on(x, y + 1))) sheet.set([255, 255, 255], at(x, y));
    }
  }
  return encodeRgbPng({ width: W, height: H, data: sheet });
}
writeFileSync(join(out, 'contact-sheet.png'), await contactSheet(train));
