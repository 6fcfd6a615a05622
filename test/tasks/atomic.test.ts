// A write that fails at the last step (the rename over the old file) must leave the old file whole
// and no temporary file behind: run-folder JSON, feature caches and checkpoints alike.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { tensor } from '../../index.node.js';
import { RunLog } from '../../tasks/lib/log.js';
import { listCheckpoints, loadFeatureCache, loadLatestCheckpoint } from '../../tasks/lib/resume.js';
import { openRun } from '../../tasks/lib/run.js';

const failRename = vi.hoisted(() => ({ on: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...fs,
    rename: (from: string, to: string) => (failRename.on ? Promise.reject(new Error('ENOSPC: no space left on device, rename')) : fs.rename(from, to)),
  };
});

const root = mkdtempSync(join(tmpdir(), 'atomic-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('atomic writes under failure', () => {
  it('keeps the previous metrics, feature cache and checkpoint when the replacing write fails', async () => {
    const run = await openRun({ task: 'toy', config: { lr: 0.1 }, out: join(root, 'run'), log: new RunLog({ console: null }) });
    await run.writeJson('metrics.json', { top1: 0.25 });
    await run.saveFeatures('train', { features: Float32Array.from([1, 2, 3, 4]), labels: [0, 1], dim: 2 });
    await run.saveCheckpoint({ epoch: 1, step: 10, model: { w: tensor([1, 2], [2]) } });

    failRename.on = true;
    try {
      await expect(run.writeJson('metrics.json', { top1: 0.5 })).rejects.toThrow(/metrics\.json failed, the previous file \(if any\) is intact: ENOSPC/);
      await expect(run.saveFeatures('train', { features: Float32Array.from([9, 9, 9, 9]), labels: [1, 0], dim: 2 })).rejects.toThrow('ENOSPC');
      await expect(run.saveCheckpoint({ epoch: 2, step: 20, model: { w: tensor([3, 4], [2]) } })).rejects.toThrow('ENOSPC');
    } finally {
      failRename.on = false;
    }
    run.close();

    expect(JSON.parse(readFileSync(run.path('metrics.json'), 'utf8'))).toEqual({ top1: 0.25 });
    const cache = await loadFeatureCache(run.dir, 'train');
    expect(Array.from(cache!.features)).toEqual([1, 2, 3, 4]);
    expect(Array.from(cache!.labels)).toEqual([0, 1]);
    expect((await listCheckpoints(run.dir)).map((c) => c.epoch)).toEqual([1]);
    const state = await loadLatestCheckpoint(run.dir);
    expect(Array.from(await state!.model.get('w')!.data())).toEqual([1, 2]);
    for (const dir of [run.dir, run.path('features'), run.path('checkpoints')]) {
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    }
  });
});
