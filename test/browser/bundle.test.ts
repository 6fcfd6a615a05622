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

describe('browser test bundles', () => {
  const files = testFiles([]) as string[];

  it('covers test/kernels and test/autograd', () => {
    const rel = files.map((f) => relative(process.cwd(), f));
    expect(rel).toContain(join('test', 'kernels', 'matmul.test.ts'));
    expect(rel).toContain(join('test', 'autograd', 'ops.test.ts'));
  });

  for (const file of files) {
    it(`bundles ${relative(process.cwd(), file)}`, async () => {
      const b = (await bundle('check', file)) as Bundle;
      expect(b.skip ?? b.error).toBeUndefined();
      expect(b.js).toContain('runPage(');
    });
  }

  it('skips a file that imports a Node built-in, naming the module', async () => {
    const file = join(dir, 'uses-fs.test.ts');
    writeFileSync(file, "import { it } from 'vitest';\nimport { readFileSync } from 'node:fs';\nit('reads', () => void readFileSync);\n");
    const b = (await bundle('check', file)) as Bundle;
    expect(b.skip).toMatch(/needs Node built-ins: node:fs \(imported by .*uses-fs\.test\.ts\)/);
  });
});
