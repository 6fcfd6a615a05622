// `npm run test:browser` skips a test file whose imports reach a Node built-in. When test/setup.ts
// began importing the Dawn provider, every file became such a skip and the browser suite ran
// nothing. So `npm test` checks, without a browser, that the runner bundles every kernel and
// autograd test file, and that it still detects a file that does need Node.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain ESM script, without type declarations
import { bundle, testFiles } from '../../scripts/test-browser.mjs';

interface Bundle {
  js?: string;
  skip?: string;
  error?: string;
}

const dir = mkdtempSync(join(tmpdir(), 'browser-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// the test files that read files (fixtures, shared data sets) and so need Node: skipped by design.
// Any other file must bundle, so a pure test that starts to reach a Node built-in fails here.
const READS_FILES = new Set([
  'test/data/cifar.test.ts',
  'test/data/decode.test.ts',
  'test/data/detection-transforms-torchvision.test.ts',
  'test/data/lists.test.ts',
  'test/data/loader.test.ts',
  'test/data/masks-official.test.ts',
  'test/data/node-coco.test.ts',
  'test/data/node-instance-sets.test.ts',
  'test/data/subsets.test.ts',
  'test/data/vg150.test.ts',
  'test/detection/eval/gt-as-dt.test.ts',
  'test/detection/eval/official.test.ts',
]);

describe('browser test bundles', () => {
  const files = testFiles([]) as string[];
  const rel = (f: string) => relative(process.cwd(), f).split('\\').join('/');

  it('covers test/kernels, test/autograd, test/detection (with test/detection/eval) and test/data', () => {
    const names = files.map(rel);
    for (const f of ['test/kernels/matmul.test.ts', 'test/autograd/ops.test.ts', 'test/detection/poolers.test.ts', 'test/detection/eval/hand.test.ts', 'test/data/masks.test.ts']) expect(names).toContain(f);
    for (const f of READS_FILES) expect(names, 'a file of the skip list that no longer exists').toContain(f);
  });

  for (const file of files) {
    const name = rel(file);
    it(`${READS_FILES.has(name) ? 'skips (reads files)' : 'bundles'} ${name}`, async () => {
      const b = (await bundle('check', [file])) as Bundle;
      expect(b.error).toBeUndefined();
      if (READS_FILES.has(name)) {
        expect(b.skip).toMatch(/needs Node built-ins: node:(fs|path|url)/);
        return;
      }
      expect(b.skip).toBeUndefined();
      expect(b.js).toContain('runPage(');
    });
  }

  it('skips a file that imports a Node built-in, naming the module', async () => {
    const file = join(dir, 'uses-fs.test.ts');
    writeFileSync(file, "import { it } from 'vitest';\nimport { readFileSync } from 'node:fs';\nit('reads', () => void readFileSync);\n");
    const b = (await bundle('check', [file])) as Bundle;
    expect(b.skip).toMatch(/needs Node built-ins: node:fs \(imported by .*uses-fs\.test\.ts\)/);
  });
});
