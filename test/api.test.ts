// The public API is what the README presents: every name of its "A short tour of the API" section
// is exported by the package entries (index.node.ts for Node, index.ts for browsers, `raw.*`
// under raw), and its code examples run exactly as written, with 'longtail-webgpu' resolved to the
// source entry.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import * as nodeEntry from '../index.node.js';
import * as webEntry from '../index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

function section(title: string): string {
  const start = readme.indexOf(`## ${title}`);
  expect(start, `README section "${title}"`).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 3);
  return readme.slice(start, end < 0 ? undefined : end);
}

const tour = section('A short tour of the API');
const prose = tour.replace(/```[\s\S]*?```/g, '');
/** `name` and `raw.name` mentions that look like exported identifiers; a "(Node)" after one marks it Node-only. */
const mentions = [...prose.matchAll(/`((?:raw\.)?[A-Za-z_$][\w$]*)`(\s*\(Node\))?/g)].map((m) => ({ name: m[1], nodeOnly: Boolean(m[2]) }));
/** Words in backticks that are not exports: file names, option keys, methods on a tensor, a WGSL entry point. */
const NOT_EXPORTS = new Set(['fn', 'dispose', 'retainGraph', 'toArray', 'item', 'data', 'main']);

const has = (entry: Record<string, unknown>, name: string): boolean => {
  const [head, tail] = name.startsWith('raw.') ? ['raw', name.slice(4)] : [name, null];
  const v = entry[head];
  return tail === null ? v !== undefined : Boolean(v && typeof v === 'object' && (v as Record<string, unknown>)[tail] !== undefined);
};

describe('the README\'s API', () => {
  it('names at least the long-tail losses, the runner, the ops and raw kernels', () => {
    const names = new Set(mentions.map((m) => m.name));
    for (const n of ['crossEntropy', 'focalLoss', 'ldamLoss', 'logitAdjustedLoss', 'eqlLoss', 'seqlLoss', 'sigmoidLoss', 'trainStage1', 'TwoStageModel', 'conv2d', 'raw.matmul']) expect(names.has(n), n).toBe(true);
    expect(mentions.length).toBeGreaterThan(150);
  });

  it('every name it presents is exported: by the Node entry, and by the browser entry unless marked (Node)', () => {
    const missing: string[] = [];
    for (const { name, nodeOnly } of mentions) {
      if (NOT_EXPORTS.has(name)) continue;
      if (!has(nodeEntry, name)) missing.push(`${name} (Node entry)`);
      if (!nodeOnly && !has(webEntry, name)) missing.push(`${name} (browser entry)`);
    }
    expect(missing).toEqual([]);
  });

  it('keeps raw kernels under raw only, and the top-level op names differentiable', async () => {
    const { tensor } = nodeEntry;
    for (const entry of [nodeEntry, webEntry]) {
      expect(entry.raw.matmul).not.toBe(entry.matmul);
      expect('binary' in entry, 'raw kernels are not at the top level').toBe(false);
      expect('mapN' in entry).toBe(false);
    }
    const x = tensor([1, 2, 3], [3], { device: 'cpu' }).requireGrad();
    expect(nodeEntry.sum(nodeEntry.exp(x)).node).not.toBeNull();
    expect(nodeEntry.raw.sum(nodeEntry.raw.unary('exp', x)).node).toBeNull();
    x.dispose();
  });

  const dir = mkdtempSync(join(tmpdir(), 'readme-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const examples = [...tour.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

  it('has a code example', () => {
    expect(examples.length).toBeGreaterThan(0);
  });

  examples.forEach((code, k) => {
    it(`code example ${k + 1} runs as written`, async () => {
      expect(code).toContain("from 'longtail-webgpu'");
      const file = join(dir, `example-${k}.ts`);
      writeFileSync(file, code.replaceAll("from 'longtail-webgpu'", `from ${JSON.stringify(pathToFileURL(join(root, 'index.node.ts')).href)}`));
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      try {
        await import(/* @vite-ignore */ pathToFileURL(file).href);
        expect(log).toHaveBeenCalled();
        for (const call of log.mock.calls) for (const v of call) if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true);
      } finally {
        log.mockRestore();
      }
    });
  });
});
