// `node tasks/ade20k.js` on a tiny embedded set: the run folder's files, and a resume from the
// stage-1 checkpoint that must end with exactly the metrics of the uninterrupted run.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';

const repo = fileURLToPath(new URL('../../', import.meta.url));
let work: string;
let task: string;
const ARGS = ['--iterations', '4', '--checkpoint-every', '2', '--disalign-iterations', '2', '--train-images', '8', '--test-images', '4', '--image-size', '32', '--batch-size', '2', '--pictures', '2'];

function runTask(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [task, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ade20k-task-'));
  symlinkSync(join(repo, 'node_modules'), join(work, 'node_modules'), 'dir');
  await build({ bundle: true, format: 'esm', target: 'es2022', platform: 'node', packages: 'external', logLevel: 'warning', absWorkingDir: repo, entryPoints: ['tasks/ade20k.ts'], outfile: join(work, 'tasks/ade20k.js') });
  task = join(work, 'tasks/ade20k.js');
});

describe('tasks/ade20k.js on the embedded set', () => {
  it('writes the run folder, and a resume from the stage-1 checkpoint ends with the same metrics', () => {
    const a = join(work, 'a');
    const r = runTask([...ARGS, '--out', a]);
    expect(r.status, r.out).toBe(0);
    for (const f of ['config.json', 'log.txt', 'metrics.json', 'results.md', 'predictions.png', 'predictions/scene_0000_baseline.png', 'predictions/scene_0001_DisAlign_color.png']) expect(existsSync(join(a, f)), f).toBe(true);
    const results = readFileSync(join(a, 'results.md'), 'utf8');
    expect(results).toMatch(/\| baseline \| [\d.]+ \|/);
    expect(results).toMatch(/\| DisAlign \| [\d.]+ \|/);
    expect(results).toMatch(/logit adjustment/);
    const metrics = JSON.parse(readFileSync(join(a, 'metrics.json'), 'utf8'));
    expect(Object.keys(metrics.methods)).toEqual(['baseline', 'logit adjustment (τ=1)', 'τ-norm (τ=1)', 'DisAlign']);
    expect(metrics.split.head.length).toBe(4);
    expect(metrics.split.tail.length).toBe(8);
    // stage-1 checkpoints at 2 and 4, then the DisAlign one
    expect(readdirSync(join(a, 'checkpoints')).sort()).toEqual(['epoch-0000.safetensors', 'epoch-0001.safetensors', 'epoch-0002.safetensors']);

    // resume from the stage-1 checkpoint at iteration 2 (as if killed before iteration 4)
    const b = join(work, 'b');
    cpSync(a, b, { recursive: true });
    for (const f of ['epoch-0001.safetensors', 'epoch-0002.safetensors', 'metrics.json']) rmSync(join(b, 'checkpoints', f), { force: true });
    rmSync(join(b, 'metrics.json'));
    const r2 = runTask([...ARGS, '--out', b, '--resume']);
    expect(r2.status, r2.out).toBe(0);
    expect(r2.out).toMatch(/resumed from .*epoch-0000\.safetensors: stage 1, iteration 2/);
    const m2 = JSON.parse(readFileSync(join(b, 'metrics.json'), 'utf8'));
    expect(m2.methods).toEqual(metrics.methods);
  });

  it('refuses a missing --data-root with a message naming the folder', () => {
    const r = runTask(['--data-root', join(work, 'nope'), '--out', join(work, 'c')]);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/nope\/images\/training: no such image directory/);
  });
});
