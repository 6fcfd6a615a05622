// The browser bundle must never reach a Node built-in: scripts/build.mjs builds it with platform
// 'browser', which turns such an import into a build error. Prove it on a throwaway entry, with
// the library entry as the control.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
// @ts-expect-error -- a plain ESM script, without type declarations
import { webOptions } from '../../scripts/build.mjs';

const dir = mkdtempSync(join(tmpdir(), 'web-build-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('browser build', () => {
  it('bundles the library entry (index.ts)', async () => {
    const out = await build({ ...webOptions, entryPoints: ['index.ts'], outfile: join(dir, 'web.js'), write: false });
    expect(out.errors).toHaveLength(0);
  });

  for (const spec of ['node:fs', 'fs', 'node:worker_threads']) {
    it(`fails on an entry that imports ${spec}`, async () => {
      const entry = join(dir, `uses-${spec.replace(/\W/g, '_')}.ts`);
      writeFileSync(entry, `import { readFileSync } from '${spec}';\nexport const read = readFileSync;\n`);
      await expect(build({ ...webOptions, entryPoints: [entry], outfile: join(dir, 'out.js'), write: false, logLevel: 'silent' })).rejects.toThrow(
        new RegExp(`Could not resolve "${spec}"`),
      );
    });
  }
});
