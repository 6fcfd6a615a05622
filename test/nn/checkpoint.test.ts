import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { hasWebGPU, manualSeed, scope, tensor, type Backend, type Tensor } from '../../index.node.js';
import { add, matmul, mean, relu, softmaxKL } from '../../autograd/ops.js';
import { copyInto } from '../../nn/init.js';
import { BatchNorm2d, Conv2d, Flatten, Linear, ReLU } from '../../nn/layers.js';
import { Sequential, StateDictError } from '../../nn/module.js';
import { AdamW, SGD } from '../../nn/optim.js';
import { cosineLr } from '../../nn/schedule.js';
import { checkStateDict, decodeSafetensors, encodeSafetensors, loadSafetensors, saveSafetensors } from '../../nn/safetensors.js';
import { loadCheckpoint, saveCheckpoint } from '../../nn/node-checkpoint.js';
import { randomArray, randomInts } from '../helpers.js';

const gpu = (): Backend => (hasWebGPU() ? 'webgpu' : 'cpu');
const dir = mkdtempSync(join(tmpdir(), 'checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The stored bits: 32 per value on the GPU, 64 per value on the CPU backend (float64). */
const bitsOf = async (t: Tensor): Promise<number[]> => {
  const d = await t.data();
  return Array.from(new Uint32Array(d.buffer, d.byteOffset, d.byteLength / 4));
};
const f32FromBits = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);

/** A file built by hand from the format's definition: u64 LE header length, JSON header, data. */
function handmade(header: object, data: number[] = []): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}
const le = (bytesPer: number, values: (number | bigint)[]): number[] => {
  const b = new Uint8Array(values.length * bytesPer);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => (bytesPer === 2 ? v.setUint16(2 * i, Number(x), true) : bytesPer === 4 ? v.setFloat32(4 * i, Number(x), true) : typeof x === 'bigint' ? v.setBigInt64(8 * i, x, true) : v.setFloat64(8 * i, x, true)));
  return Array.from(b);
};

describe('safetensors', () => {
  it('round-trips GPU tensors through a file bit for bit: NaN, -0, infinities, subnormals, integer extremes, scalars, empty tensors', async () => {
    const floatBits = [0x7fc00001, 0xffc12345, 0x80000000, 0x7f800000, 0xff800000, 0x00000001, 0x807fffff, 0x7f7fffff, 0x3f800000];
    const device = gpu();
    const model = new Map<string, Tensor>([
      ['layer1.0.conv1.weight', tensor(f32FromBits(floatBits), [3, 3], { device })],
      ['fc.weight', tensor(randomArray(7 * 5), [7, 5], { device })],
      ['bn.num_batches_tracked', tensor([2147483647], [], { dtype: 'i32', device })],
      ['ints', tensor(Int32Array.from([-2147483648, -1, 0, 7]), [2, 2], { device })],
      ['uints', tensor(Uint32Array.from([0, 1, 0xffffffff]), [3], { device })],
      ['empty', tensor([], [0, 4], { device })],
      ['ünï.cödé', tensor([1.5], [1, 1, 1], { device })],
      ['__proto__', tensor([2.5], [1], { device })],
      ['0', tensor([3.5], [1], { device })],
    ]);
    const path = join(dir, 'roundtrip.safetensors');
    await saveCheckpoint(path, { model, meta: { epoch: 12, best: { top1: 0.515 }, arch: 'resnet32' } });
    const back = await loadCheckpoint(path, device);
    expect([...back.model.keys()]).toEqual([...model.keys()]);
    for (const [name, t] of model) {
      const r = back.model.get(name)!;
      expect([r.dtype, r.shape], name).toEqual([t.dtype, t.shape]);
      expect(await bitsOf(r), name).toEqual(await bitsOf(t));
    }
    expect(back.meta).toEqual({ epoch: 12, best: { top1: 0.515 }, arch: 'resnet32' });
    expect(back.optimizer).toBeNull();
  });

  it('writes the documented layout: u64 LE header length, space-padded JSON, 8-byte aligned data, contiguous offsets', async () => {
    const file = await saveSafetensors({ a: tensor([1, 2, 3], [3], { device: 'cpu' }), b: tensor(Int32Array.from([-1, 5]), [1, 2], { device: 'cpu' }) }, { note: 'x' });
    const n = Number(new DataView(file.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const text = new TextDecoder().decode(file.subarray(8, 8 + n));
    expect(text.slice(text.lastIndexOf('}') + 1)).toMatch(/^ *$/);
    expect(JSON.parse(text)).toEqual({
      __metadata__: { note: 'x' },
      a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      b: { dtype: 'I32', shape: [1, 2], data_offsets: [12, 20] },
    });
    expect(file.length).toBe(8 + n + 20);
    expect(Array.from(new Float32Array(file.slice(8 + n, 8 + n + 12).buffer))).toEqual([1, 2, 3]);
    expect(Array.from(new Int32Array(file.slice(8 + n + 12).buffer))).toEqual([-1, 5]);
  });

  it('reads F16, BF16, F64 and I64 into f32 / i32, and says which value does not fit', async () => {
    const file = handmade(
      {
        half: { dtype: 'F16', shape: [6], data_offsets: [0, 12] },
        brain: { dtype: 'BF16', shape: [2], data_offsets: [12, 16] },
        double: { dtype: 'F64', shape: [2], data_offsets: [16, 32] },
        long: { dtype: 'I64', shape: [2], data_offsets: [32, 48] },
      },
      [...le(2, [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00]), ...le(2, [0x3f80, 0xc040]), ...le(8, [0.1, -1e30]), ...le(8, [-5n, 2147483647n])],
    );
    for (const device of new Set<Backend>(['cpu', gpu()])) {
      const { tensors } = loadSafetensors(file, device);
      expect(Array.from(await tensors.get('half')!.data())).toEqual([1, -2, 65504, 2 ** -24, Infinity, NaN]);
      expect(Array.from(await tensors.get('brain')!.data())).toEqual([1, -3]);
      // the CPU backend keeps the float64 values; the GPU holds them rounded to f32
      expect(Array.from(await tensors.get('double')!.data())).toEqual(device === 'cpu' ? [0.1, -1e30] : [Math.fround(0.1), Math.fround(-1e30)]);
      const long = tensors.get('long')!;
      expect([long.dtype, Array.from(await long.data())]).toEqual(['i32', [-5, 2147483647]]);
    }
    const tooLong = handmade({ x: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, le(8, [1n, 2147483648n]));
    expect(() => loadSafetensors(tooLong, 'cpu')).toThrow(/'x': I64 element 1 \(2147483648\) does not fit in i32/);
    const tooBig = handmade({ y: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, le(8, [1e39]));
    expect(() => loadSafetensors(tooBig, 'cpu')).toThrow(/'y': F64 element 0 \(1e\+39\) does not fit in f32/);
    const bool = handmade({ z: { dtype: 'BOOL', shape: [1], data_offsets: [0, 1] } }, [1]);
    expect(() => decodeSafetensors(bool)).toThrow(/'z': dtype "BOOL" is not supported/);
  });

  it('names the tensor and the offset when a file is truncated or its header is corrupt', async () => {
    const file = encodeSafetensors([
      ['conv.weight', { dtype: 'F32', shape: [4, 4], data: new Float32Array(16) }],
      ['fc.bias', { dtype: 'F32', shape: [10], data: new Float32Array(10) }],
    ]);
    const path = join(dir, 'truncated.safetensors');
    writeFileSync(path, file.subarray(0, file.length - 3));
    await expect(loadCheckpoint(path)).rejects.toThrow(/truncated\.safetensors\): safetensors: 'fc\.bias': data_offsets end 104 \(file offset \d+\) points past the end of the file/);
    expect(() => decodeSafetensors(file.subarray(0, 20))).toThrow(/the header \(bytes 8 to \d+\) runs past the end of the file \(20 bytes\): the file is truncated/);
    expect(() => decodeSafetensors(file.subarray(0, 5))).toThrow(/fewer than the 8-byte header length/);
    const garbled = file.slice();
    garbled[12] = 0x22; // a quote inside the first key: no longer JSON
    expect(() => decodeSafetensors(garbled)).toThrow(/the header \(bytes 8 to \d+\) is not valid UTF-8 JSON/);
    const huge = file.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => decodeSafetensors(huge)).toThrow(/header length 1099511627776 exceeds/);
    const wrongSize = handmade({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, le(4, [1, 2, 3]));
    expect(() => decodeSafetensors(wrongSize)).toThrow(/'w': data_offsets \[0, 12\] hold 12 bytes, a F32 tensor of shape \[2, 2\] needs 16/);
    const overlap = handmade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, le(4, [1, 2]));
    expect(() => decodeSafetensors(overlap)).toThrow(/'b': data_offsets \[4, 8\] overlap the previous tensor/);
    const hole = handmade({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, le(4, [1, 2]));
    expect(() => decodeSafetensors(hole)).toThrow(/'a': data_offsets \[4, 8\] leave a hole after offset 0/);
    const trailing = handmade({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, le(4, [1, 2]));
    expect(() => decodeSafetensors(trailing)).toThrow(/the tensors end at data offset 4 but the file holds 8 data bytes/);
  });

  it('reports missing, unexpected and wrong-shaped entries of a state dict by name', () => {
    const sd = { 'fc.weight': tensor(new Float32Array(6), [2, 3], { device: 'cpu' }), 'fc.bias': tensor([0, 0, 0], [3], { device: 'cpu' }), extra: tensor([1], [1], { device: 'cpu' }) };
    const report = checkStateDict(sd, { 'fc.weight': [3, 2], 'fc.bias': [3], 'conv.weight': [4, 3, 1, 1] });
    expect(report).toMatchObject({ ok: false, missing: ['conv.weight'], unexpected: ['extra'], mismatched: [{ name: 'fc.weight', expected: [3, 2], actual: [2, 3] }] });
    expect(report.message).toBe('missing: conv.weight\nunexpected: extra\nshape mismatch for fc.weight: [2, 3] in the state dict, [3, 2] expected');
    expect(checkStateDict(sd, { 'fc.weight': [2, 3], 'fc.bias': [3], extra: [1] })).toMatchObject({ ok: true, message: '' });
  });

  it('writes atomically: a failed write leaves the previous checkpoint intact and no temporary file', async () => {
    const path = join(dir, 'atomic.safetensors');
    await saveCheckpoint(path, { model: { w: tensor([1, 2], [2], { device: gpu() }) }, meta: { epoch: 1 } });
    const previous = readFileSync(path);
    // the disk fails at fsync, after the new bytes went to the temporary file
    const probe = await open(path, 'r');
    const fileHandle = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    const sync = vi.spyOn(fileHandle, 'sync').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    try {
      await expect(saveCheckpoint(path, { model: { w: tensor([3, 4, 5], [3], { device: gpu() }) }, meta: { epoch: 2 } })).rejects.toThrow(/writing .*atomic\.safetensors failed, the previous file \(if any\) is intact: EIO/);
    } finally {
      sync.mockRestore();
    }
    expect(readFileSync(path).equals(previous)).toBe(true);
    // a tensor that cannot be read fails before any byte is written
    const gone = tensor([1], [1], { device: gpu() });
    gone.dispose();
    await expect(saveCheckpoint(path, { model: { w: gone } })).rejects.toThrow(/tensor 'w' was disposed/);
    expect(readFileSync(path).equals(previous)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('atomic'))).toEqual(['atomic.safetensors']);
    expect((await loadCheckpoint(path)).meta).toEqual({ epoch: 1 });
  });
});

// ---- resume: a 2-layer MLP built from autograd ops, trained k steps, checkpointed, continued m steps

const D = 5, H = 6, C = 3, N = 8, K = 3, M = 3, ITERS = K + M;
const BATCHES = Array.from({ length: ITERS }, () => ({ x: randomArray(N * D), y: randomInts(N, 0, C) }));
const INIT = { 'fc1.weight': randomArray(H * D, -0.5, 0.5), 'fc1.bias': randomArray(H, -0.1, 0.1), 'fc2.weight': randomArray(C * H, -0.5, 0.5), 'fc2.bias': randomArray(C, -0.1, 0.1) };
const SHAPES: Record<string, number[]> = { 'fc1.weight': [H, D], 'fc1.bias': [H], 'fc2.weight': [C, H], 'fc2.bias': [C] };
const lrAt = cosineLr({ lr: 0.1, epochs: 2, warmupEpochs: 1, itersPerEpoch: 3 });

function mlp(device: Backend, init: Record<string, ArrayLike<number>>): Map<string, Tensor> {
  return new Map(Object.entries(SHAPES).map(([n, s]) => [n, tensor(init[n], s, { device }).requireGrad()]));
}

function trainSteps(model: Map<string, Tensor>, opt: SGD | AdamW, from: number, to: number): void {
  const p = (n: string) => model.get(n)!;
  const device = p('fc1.weight').device;
  for (let s = from; s < to; s++) {
    scope(() => {
      const x = tensor(BATCHES[s].x, [N, D], { device });
      const y = tensor(BATCHES[s].y, [N], { dtype: 'i32', device });
      const h = relu(add(matmul(x, p('fc1.weight'), { transB: true }), p('fc1.bias')));
      const logits = add(matmul(h, p('fc2.weight'), { transB: true }), p('fc2.bias'));
      opt.zeroGrad();
      mean(softmaxKL(logits, { labels: y })).backward();
      opt.setLr(lrAt(Math.floor(s / 3), s % 3));
      opt.step();
    });
  }
}

const groups = (model: Map<string, Tensor>) => [
  { params: [...model].filter(([n]) => n.endsWith('weight')) },
  { params: [...model].filter(([n]) => n.endsWith('bias')), weightDecay: 0 },
];
const optimizers: [string, (m: Map<string, Tensor>) => SGD | AdamW][] = [
  ['SGD with nesterov momentum', (m) => new SGD(groups(m), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 })],
  ['AdamW with amsgrad', (m) => new AdamW(groups(m), { lr: 0.1, amsgrad: true })],
];

describe('checkpoint resume', () => {
  for (const [label, makeOpt] of optimizers) {
    it(`${label}: k steps + checkpoint + m steps equals reload into a fresh model and optimizer + m steps, bit for bit`, async () => {
      for (const device of new Set<Backend>(['cpu', gpu()])) {
        const path = join(dir, `resume-${device}.safetensors`);
        const model = mlp(device, INIT);
        const opt = makeOpt(model);
        trainSteps(model, opt, 0, K);
        // the CPU backend holds float64 values: store them as F64 so its resume is exact too
        await saveCheckpoint(path, { model, optimizer: opt.stateDict(), meta: { step: K } }, { floatDType: device === 'cpu' ? 'F64' : 'F32' });
        trainSteps(model, opt, K, ITERS);

        const fresh = mlp(device, Object.fromEntries(Object.entries(SHAPES).map(([n, s]) => [n, new Float32Array(s.reduce((a, b) => a * b, 1))])));
        const freshOpt = makeOpt(fresh);
        const ckpt = await loadCheckpoint(path, device);
        expect(checkStateDict(ckpt.model, Object.fromEntries([...fresh].map(([n, t]) => [n, t.shape]))).ok).toBe(true);
        for (const [n, t] of fresh) copyInto(t, ckpt.model.get(n)!);
        freshOpt.loadStateDict(ckpt.optimizer!);
        expect(ckpt.meta).toEqual({ step: K });
        expect([...ckpt.optimizer!.tensors.keys()].some((k) => k === 'state.fc1.weight.' + (label.startsWith('SGD') ? 'momentum_buffer' : 'max_exp_avg_sq'))).toBe(true);
        trainSteps(fresh, freshOpt, K, ITERS);
        for (const [n, t] of model) expect(await bitsOf(fresh.get(n)!), `${device} ${n}`).toEqual(await bitsOf(t));
        // and the run did move: the parameters are not the initial ones
        expect(Array.from(await model.get('fc1.weight')!.data())).not.toEqual(Array.from(INIT['fc1.weight']));
      }
    });
  }
});

// ---- loading a checkpoint file into a model: every failure names the key or the offset, before anything is copied

describe('torch dtypes', () => {
  it('stores BatchNorm num_batches_tracked as I64, as torch does, and reads it back as the same count', async () => {
    const model = new Sequential(new Conv2d(3, 4, 3, { bias: false, device: gpu() }), new BatchNorm2d(4, { device: gpu() }));
    model.train();
    scope(() => void model.forward(tensor(randomArray(2 * 3 * 5 * 5), [2, 3, 5, 5], { device: gpu() })));
    scope(() => void model.forward(tensor(randomArray(2 * 3 * 5 * 5), [2, 3, 5, 5], { device: gpu() })));
    const file = await saveSafetensors(model.stateDict());
    const { tensors } = decodeSafetensors(file);
    // every dtype as torch's state_dict() has it: float weights and statistics F32, the counter I64
    expect(Object.fromEntries([...tensors].map(([k, r]) => [k, `${r.dtype}[${r.shape}]`]))).toEqual({
      '0.weight': 'F32[4,3,3,3]', '1.weight': 'F32[4]', '1.bias': 'F32[4]', '1.running_mean': 'F32[4]', '1.running_var': 'F32[4]', '1.num_batches_tracked': 'I64[]',
    });
    const raw = tensors.get('1.num_batches_tracked')!;
    expect(new BigInt64Array(raw.bytes.slice().buffer)[0]).toBe(2n);
    const back = loadSafetensors(file, gpu()).tensors.get('1.num_batches_tracked')!;
    expect(back.dtype).toBe('i32');
    expect(await back.item()).toBe(2);
    const copy = new Sequential(new Conv2d(3, 4, 3, { bias: false, device: gpu() }), new BatchNorm2d(4, { device: gpu() }));
    copy.loadStateDict(loadSafetensors(file, gpu()).tensors);
    expect(await (copy.stateDict().get('1.num_batches_tracked') as Tensor).item()).toBe(2);
  });
});

describe('checkpoint into a model', () => {
  const build = (seed: number) => {
    manualSeed(seed);
    const device = gpu();
    return new Sequential(new Conv2d(3, 4, 3, { device }), new BatchNorm2d(4, { device }), new ReLU(), new Flatten(), new Linear(4 * 2 * 2, 3, { device }));
  };
  const snapshot = async (m: Sequential) => Promise.all([...m.stateDict()].map(async ([name, t]) => [name, t.shape, Array.from(await t.data())]));
  /** Loads the file at `path` into `model` as a resumed run does: read and validate, then copy. */
  const loadInto = async (model: Sequential, path: string) => model.loadStateDict((await loadCheckpoint(path, gpu())).model);

  it('rejects a missing key, a wrong shape and a truncated file by name and offset, leaving the model untouched; a good file loads', async () => {
    const source = build(1);
    const target = build(2);
    const before = await snapshot(target);
    expect(before).not.toEqual(await snapshot(source));
    const saved = source.stateDict();

    const missing = new Map(saved);
    missing.delete('1.running_var');
    await saveCheckpoint(join(dir, 'missing.safetensors'), { model: missing });
    const missingError = await loadInto(target, join(dir, 'missing.safetensors')).catch((e: unknown) => e);
    expect(missingError).toBeInstanceOf(StateDictError);
    expect((missingError as StateDictError).missingKeys).toEqual(['1.running_var']);
    expect((missingError as Error).message).toMatch(/Missing key\(s\) in state_dict: "1\.running_var"/);
    expect(await snapshot(target)).toEqual(before);

    const reshaped = new Map(saved);
    reshaped.set('4.weight', tensor(new Float32Array(3 * 17), [3, 17], { device: 'cpu' }));
    await saveCheckpoint(join(dir, 'reshaped.safetensors'), { model: reshaped });
    await expect(loadInto(target, join(dir, 'reshaped.safetensors'))).rejects.toThrow(
      /size mismatch for 4\.weight: copying a param with shape \[3, 17\] from checkpoint, the shape in current model is \[3, 16\]/,
    );
    expect(await snapshot(target)).toEqual(before);

    const full = join(dir, 'model.safetensors');
    await saveCheckpoint(full, { model: saved });
    const bytes = readFileSync(full);
    writeFileSync(join(dir, 'cut-data.safetensors'), bytes.subarray(0, bytes.length - 5));
    // the last tensor in the file is the last state-dict entry, 4.bias: its end lies past the cut
    await expect(loadInto(target, join(dir, 'cut-data.safetensors'))).rejects.toThrow(
      /cut-data\.safetensors\): safetensors: '4\.bias': data_offsets end \d+ \(file offset \d+\) points past the end of the file \(\d+ bytes\)/,
    );
    writeFileSync(join(dir, 'cut-header.safetensors'), bytes.subarray(0, 40));
    await expect(loadInto(target, join(dir, 'cut-header.safetensors'))).rejects.toThrow(/cut-header\.safetensors\): safetensors: the header \(bytes 8 to \d+\) runs past the end of the file \(40 bytes\)/);
    expect(await snapshot(target)).toEqual(before);

    await loadInto(target, full);
    expect(await snapshot(target)).toEqual(await snapshot(source));
  });
});
