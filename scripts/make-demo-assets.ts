// Builds assets/demo/ from a finished `node tasks/imagenet-lt.js` run (its embedded CIFAR-10-LT mini
// set): what the browser demo (demo/index.html) ships with.
//   cifar10-lt-mini.features.safetensors  features [N, D], labels [N], counts [C], weight [C, D],
//                                         bias [C], test_features [M, D], test_labels [M]; metadata
//                                         class_names and the run's stage-1 results
//   cifar10-lt-mini.resnet8.safetensors   the stage-1 backbone (its state dict without the head)
// Run from the repository root, after a run (e.g. `node tasks/imagenet-lt.js --out runs/demo`):
//   npx esbuild scripts/make-demo-assets.ts --bundle --platform=node --format=esm \
//     --outfile=/tmp/mk-demo.mjs && node /tmp/mk-demo.mjs runs/demo
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { init } from '../kernels/device.js';
import { encodeSafetensors } from '../nn/safetensors.js';
import { loadFeatureCache, loadLatestCheckpoint } from '../tasks/lib/resume.js';

const run = process.argv[2];
if (!run) throw new Error('usage: node mk-demo.mjs RUN_FOLDER (a finished tasks/imagenet-lt.js run)');
await init({ backend: 'cpu' });
const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as Record<string, unknown>;
const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8')) as { methods: { method: string; top1: number; many: number; medium: number; few: number }[]; train_counts: number[] };
const train = await loadFeatureCache(run, 'train');
const test = await loadFeatureCache(run, 'test');
const ckpt = await loadLatestCheckpoint(run, 'cpu');
if (!train || !test || !ckpt) throw new Error(`${run}: needs features/train, features/test and a checkpoint (a finished run)`);
const host = (name: string): Float32Array => {
  const t = ckpt.model.get(name);
  if (!t) throw new Error(`${ckpt.path}: no tensor ${name}`);
  return Float32Array.from(t.cpu as Float64Array);
};
const C = metrics.train_counts.length;
const classNames = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
if (C !== classNames.length) throw new Error(`expected the 10 CIFAR-10 classes, the run has ${C}`);
const stage1 = metrics.methods[0];
const out = 'assets/demo';
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'cifar10-lt-mini.features.safetensors'), encodeSafetensors([
  ['features', { dtype: 'F32', shape: [train.count, train.dim], data: train.features }],
  ['labels', { dtype: 'I32', shape: [train.count], data: train.labels }],
  ['counts', { dtype: 'I32', shape: [C], data: Int32Array.from(metrics.train_counts) }],
  ['weight', { dtype: 'F32', shape: [C, train.dim], data: host('head.fc.weight') }],
  ['bias', { dtype: 'F32', shape: [C], data: host('head.fc.bias') }],
  ['test_features', { dtype: 'F32', shape: [test.count, test.dim], data: test.features }],
  ['test_labels', { dtype: 'I32', shape: [test.count], data: test.labels }],
], {
  class_names: JSON.stringify(classNames),
  source: `tasks/imagenet-lt.js run: ${config.model} ${config.epochs} epochs on the embedded CIFAR-10-LT mini set (checkpoint epoch ${ckpt.epoch})`,
  stage1_top1: String(stage1.top1),
}));
const backbone = [...ckpt.model].filter(([k]) => k.startsWith('backbone.') && !k.startsWith('backbone.linear.'));
writeFileSync(join(out, 'cifar10-lt-mini.resnet8.safetensors'), encodeSafetensors(backbone.map(([k, t]) => {
  const data = t.dtype === 'f32' ? Float32Array.from(t.cpu as Float64Array) : Int32Array.from(t.cpu as Int32Array);
  return [k.slice('backbone.'.length), { dtype: t.dtype === 'f32' ? 'F32' : 'I32', shape: t.shape, data }];
}), { model: String(config.model) }));
console.log(`wrote ${out}: ${train.count} train and ${test.count} test features of ${train.dim}, ${backbone.length} backbone tensors; stage-1 top-1 ${stage1.top1}`);
