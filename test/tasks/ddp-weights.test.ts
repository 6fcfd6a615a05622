// The weights scripts/ddp_stage1.py writes (its own safetensors writer, torch names, I64 batch
// counts) load by name into the task's model of the same name and give torch's outputs. The
// fixture comes from scripts/make-ddp-fixtures.py; no Python runs here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tensor } from '../../index.node.js';
import { makeBackbone, readInitWeights } from '../../tasks/lib/pipeline.js';

const dir = fileURLToPath(new URL('../fixtures/ddp/', import.meta.url));
const ref = JSON.parse(readFileSync(`${dir}resnet8.json`, 'utf8')) as { input_shape: number[]; input: number[]; features: number[]; logits: number[] };

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) (num += (a[i] - b[i]) ** 2), (den += b[i] ** 2);
  return Math.sqrt(num / den);
};

describe('stage-1 weights from the DDP script', () => {
  it('follow the safetensors layout: u64 header length, JSON header padded to 8 bytes, I64 batch counts', () => {
    const bytes = readFileSync(`${dir}resnet8.safetensors`);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    expect(header.__metadata__).toMatchObject({ format: 'pt', model: 'resnet8' });
    expect(header['bn1.num_batches_tracked']).toMatchObject({ dtype: 'I64', shape: [] });
    expect(header['layer3.0.conv2.weight']).toMatchObject({ dtype: 'F32', shape: [64, 64, 3, 3] });
    const last = Math.max(...Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => (v as { data_offsets: number[] }).data_offsets[1]));
    expect(8 + n + last).toBe(bytes.length);
  });

  it('load by name into --model resnet8 (nothing missing or unexpected) and give torch\u2019s features and logits', async () => {
    const weights = await readInitWeights(`${dir}resnet8.safetensors`);
    const backbone = makeBackbone('resnet8', 5);
    const loaded = backbone.loadStateDict(weights, { strict: false });
    expect(loaded.missingKeys).toEqual([]);
    expect(loaded.unexpectedKeys).toEqual([]);
    backbone.eval();
    const x = tensor(Float32Array.from(ref.input), ref.input_shape);
    const f = await backbone.features(x).data();
    expect(relErr(f, ref.features)).toBeLessThan(1e-5);
    const logits = await (backbone as unknown as { forward(t: typeof x): typeof x }).forward(x).data();
    expect(relErr(logits, ref.logits)).toBeLessThan(1e-5);
    // the batch counts read back as the count torch saved
    const tracked = [...backbone.namedBuffers()].find(([k]) => k === 'bn1.num_batches_tracked')![1];
    expect(Array.from(await tracked.data())).toEqual([7]);
  });
});
