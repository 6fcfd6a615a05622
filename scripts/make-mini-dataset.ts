// Builds assets/cifar10-lt-mini/: the embedded long-tailed image set that `node tasks/imagenet-lt.js`
// runs on with no arguments. CIFAR-10-LT by the Cao et al. protocol with n_max = 500 and IF = 100
// (500 … 5 images per class, so every many/medium/few split is populated), the JPEG files copied
// byte for byte from ../shared/data/cifar10, plus 100 test images per class. Lists use the
// ImageNet-LT `path label` format. Run from the repository root:
//   npx esbuild scripts/make-mini-dataset.ts --bundle --platform=node --format=esm \
//     --packages=external --outfile=/tmp/mk.mjs && node /tmp/mk.mjs [../shared/data/cifar10]
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseList, formatList, selectEntries } from '../data/lists.js';
import { longTailSubset } from '../data/subsets.js';

const src = process.argv[2] ?? '../shared/data/cifar10';
const out = 'assets/cifar10-lt-mini';
const train = parseList(readFileSync(join(src, 'train.txt'), 'utf8'), { file: 'train.txt', numClasses: 10 });
const test = parseList(readFileSync(join(src, 'test.txt'), 'utf8'), { file: 'test.txt', numClasses: 10 });
const trainSubset = selectEntries(train, longTailSubset(train.labels, 10, { imbalanceFactor: 100, nMax: 500, seed: 0 }));
const perClass = new Array(10).fill(0);
const testIdx: number[] = [];
test.labels.forEach((y, i) => {
  if (perClass[y]++ < 100) testIdx.push(i);
});
const testSubset = selectEntries(test, testIdx);
for (const ds of [trainSubset, testSubset]) {
  for (const p of ds.paths) {
    mkdirSync(dirname(join(out, p)), { recursive: true });
    copyFileSync(join(src, p), join(out, p));
  }
}
writeFileSync(join(out, 'train.txt'), formatList(trainSubset));
writeFileSync(join(out, 'test.txt'), formatList(testSubset));
console.log(`train ${trainSubset.paths.length}, test ${testSubset.paths.length}`);
