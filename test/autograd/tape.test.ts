// The tape frees what backward saved: for every entry of the op table (OP_TABLE, so a new op
// without a sample here fails), forward + backward outside any scope leaves no new live tensor and
// no pool growth, on the CPU backend and on WebGPU. So does a forward whose graph is never
// backpropagated once its output is disposed, and a retained graph once its output is disposed.
import { describe, expect, it } from 'vitest';
import { device, hasWebGPU, liveTensorCount, noGrad, runtime, scope, tensor, type Backend, type Tensor } from '../../index.node.js';
import * as ag from '../../autograd/ops.js';
import * as nn from '../../autograd/nn-ops.js';
import { conv2d, convTranspose2d } from '../../autograd/conv-ops.js';
import { segmentMax, segmentSoftmax, segmentSum } from '../../autograd/segment-ops.js';
import { logSoftmaxAxis, pixelCrossEntropy, softmaxAxis, upsampleNearest } from '../../autograd/pixel-ops.js';
import { multiScaleRoiAlign, roiAlign } from '../../autograd/detection-ops.js';
import { OP_TABLE } from '../../autograd/table.js';
import { randomArray } from '../helpers.js';

/** An input: a shape (f32, requires grad), or values that are not differentiated (indices, masks, running statistics). */
type Spec = number[] | { values: number[] | Float32Array; shape: number[]; dtype?: 'f32' | 'i32' };
interface Sample {
  what: string;
  inputs: Spec[];
  run: (xs: Tensor[]) => Tensor;
  /** the forward keeps state for the backward here (checked: at least this many tensors beyond the output) */
  saves?: number;
}

const fixed = (shape: number[], lo = -1, hi = 1): Spec => ({ values: randomArray(shape.reduce((a, b) => a * b, 1), lo, hi), shape });
const ints = (values: number[], shape: number[]): Spec => ({ values, shape, dtype: 'i32' });
const ones = (n: number): Spec => ({ values: new Float32Array(n).fill(1), shape: [n] });
const zerosOf = (n: number): Spec => ({ values: new Float32Array(n), shape: [n] });

// one or more samples per op-table entry, with the inputs of a typical call
const SAMPLES: Record<string, Sample[]> = {
  unary: [
    { what: 'exp (saves nothing, reads its output)', inputs: [[3, 4]], run: ([x]) => ag.exp(x) },
    { what: 'pow', inputs: [[5]], run: ([x]) => ag.pow(x, 3) },
  ],
  add: [{ what: 'with broadcasting', inputs: [[2, 3], [3]], run: ([a, b]) => ag.add(a, b) }],
  sub: [{ what: 'with broadcasting', inputs: [[4, 1], [5]], run: ([a, b]) => ag.sub(a, b) }],
  mul: [{ what: 'with broadcasting', inputs: [[3, 1, 5], [1, 4, 5]], run: ([a, b]) => ag.mul(a, b) }],
  div: [{ what: 'with broadcasting', inputs: [[2, 5], fixed([5], 0.5, 2)], run: ([a, b]) => ag.div(a, b) }],
  maximum: [{ what: '', inputs: [[4, 3], [3]], run: ([a, b]) => ag.maximum(a, b) }],
  minimum: [{ what: '', inputs: [[4, 3], [4, 1]], run: ([a, b]) => ag.minimum(a, b) }],
  where: [{ what: '', inputs: [{ values: [1, 0, 0, 1, 1, 0], shape: [2, 3] }, [2, 3], [3]], run: ([c, a, b]) => ag.where(c, a, b) }],
  matmul: [{ what: 'batched, transB', inputs: [[2, 3, 5], [4, 5]], run: ([a, b]) => ag.matmul(a, b, { transB: true }) }],
  reduce: [
    { what: 'sum of all (the scalar loss)', inputs: [[3, 5]], run: ([x]) => ag.sum(x) },
    { what: 'mean over an axis', inputs: [[4, 6]], run: ([x]) => ag.mean(x, 1) },
    { what: 'max keepdims', inputs: [[3, 7]], run: ([x]) => ag.max(x, 1, true) },
  ],
  softmax: [{ what: '', inputs: [[3, 7]], run: ([x]) => ag.softmax(x) }],
  logSoftmax: [{ what: '', inputs: [[4, 5]], run: ([x]) => ag.logSoftmax(x) }],
  softmaxKL: [{ what: 'with labels (saves the fused gradient)', inputs: [[4, 5], ints([0, 4, 2, 4], [4])], run: ([z, y]) => ag.softmaxKL(z, { labels: y }), saves: 1 }],
  reshape: [{ what: '', inputs: [[3, 4]], run: ([x]) => ag.reshape(x, [6, 2]) }],
  permute: [{ what: '', inputs: [[2, 3, 4]], run: ([x]) => ag.permute(x, [2, 0, 1]) }],
  slice: [{ what: '', inputs: [[4, 3, 6]], run: ([x]) => ag.slice(x, [1, 0, 2], [2, -1, 3]) }],
  pad: [{ what: '', inputs: [[2, 3]], run: ([x]) => ag.pad(x, [[1, 0], [2, 3]], 0.5) }],
  concat: [{ what: '', inputs: [[2, 3], [2, 2]], run: ([a, b]) => ag.concat([a, b], 1) }],
  expand: [{ what: '', inputs: [[3, 1]], run: ([x]) => ag.expand(x, [4, 3, 5]) }],
  gather: [{ what: 'repeated indices', inputs: [[5, 3], ints([4, 0, 4, 2], [4])], run: ([x, i]) => ag.gather(x, i, 0) }],
  scatterAdd: [{ what: '', inputs: [[2, 4], ints([3, 1, 3], [3]), [2, 3]], run: ([b, i, s]) => ag.scatterAdd(b, i, s, 1) }],
  batchNorm: [
    { what: 'training with affine parameters and running statistics (saves the batch statistics)', inputs: [[2, 3, 3, 5], [3], [3], zerosOf(3), ones(3)], run: ([x, w, b, m, v]) => nn.batchNorm2d(x, w, b, m, v, { training: true }), saves: 2 },
    { what: 'training without parameters or running statistics', inputs: [[4, 3]], run: ([x]) => nn.batchNorm(x, null, null, null, null, { training: true }), saves: 2 },
    { what: 'eval (reads the running statistics, saves nothing)', inputs: [[2, 2, 3, 1], [2], [2], fixed([2]), fixed([2], 0.5, 2)], run: ([x, w, b, m, v]) => nn.batchNorm2d(x, w, b, m, v, { training: false }) },
  ],
  maxPool2d: [{ what: 'padding and ceil mode (saves the argmax indices)', inputs: [[2, 2, 6, 5]], run: ([x]) => nn.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }), saves: 1 }],
  avgPool2d: [{ what: '', inputs: [[1, 2, 6, 5]], run: ([x]) => nn.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }) }],
  adaptiveAvgPool2d: [{ what: '', inputs: [[2, 2, 5, 3]], run: ([x]) => nn.adaptiveAvgPool2d(x, [3, 2]) }],
  dropout: [{ what: 'with a seed', inputs: [[3, 7]], run: ([x]) => nn.dropout(x, 0.3, { training: true, seed: 42 }) }],
  upsampleBilinear: [{ what: '', inputs: [[1, 2, 3, 3]], run: ([x]) => nn.upsampleBilinear(x, { size: [5, 7] }) }],
  conv2d: [
    { what: '3x3 with bias (the explicit path on a CPU adapter saves the columns)', inputs: [[2, 3, 6, 5], [4, 3, 3, 3], [4]], run: ([x, w, b]) => conv2d(x, w, b, { stride: 2, padding: 1 }) },
    { what: 'grouped, frozen input', inputs: [fixed([1, 4, 5, 6]), [6, 2, 3, 3]], run: ([x, w]) => conv2d(x, w, null, { groups: 2, padding: 1 }) },
  ],
  convTranspose2d: [
    { what: 'stride 2 with output padding and bias', inputs: [[2, 3, 3, 4], [3, 2, 3, 3], [2]], run: ([x, w, b]) => convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }) },
    { what: 'grouped, frozen input, no bias', inputs: [fixed([1, 4, 3, 3]), [4, 1, 2, 2]], run: ([x, w]) => convTranspose2d(x, w, null, { stride: 2, groups: 2 }) },
  ],
  // 9 rows in 5 segments (one empty), and a permutation of the rows
  segmentSum: [{ what: 'with perm', inputs: [[9, 3], ints([0, 2, 2, 5, 8, 9], [6]), ints([4, 0, 7, 2, 8, 1, 6, 3, 5], [9])], run: ([v, o, p]) => segmentSum(v, o, p) }],
  segmentMax: [
    { what: 'an empty segment (saves the argmax)', inputs: [[9, 4], ints([0, 2, 2, 5, 8, 9], [6])], run: ([v, o]) => segmentMax(v, o), saves: 1 },
    { what: 'with perm', inputs: [[9, 2], ints([0, 2, 2, 5, 8, 9], [6]), ints([4, 0, 7, 2, 8, 1, 6, 3, 5], [9])], run: ([v, o, p]) => segmentMax(v, o, p), saves: 1 },
  ],
  segmentSoftmax: [{ what: '', inputs: [[9, 3], ints([0, 2, 2, 5, 8, 9], [6])], run: ([v, o]) => segmentSoftmax(v, o) }],
  softmaxAxis: [{ what: 'over the channels of [N, C, H, W]', inputs: [[2, 5, 3, 2]], run: ([x]) => softmaxAxis(x, 1) }],
  logSoftmaxAxis: [{ what: 'over the last axis', inputs: [[3, 2, 4]], run: ([x]) => logSoftmaxAxis(x, -1) }],
  pixelCrossEntropy: [
    { what: 'mean with ignoreIndex and class weights (saves the fused gradient)', inputs: [[2, 4, 2, 3], ints([0, 3, -100, 1, 2, 2, 3, 0, 1, -100, 0, 2], [2, 2, 3]), fixed([4], 0.5, 2)], run: ([z, y, w]) => pixelCrossEntropy(z, y, { weight: w }), saves: 1 },
    { what: "reduction 'none', numeric weights", inputs: [[3, 2, 5], ints([1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1], [3, 5])], run: ([z, y]) => pixelCrossEntropy(z, y, { reduction: 'none', weight: [0.3, 1.7] }), saves: 1 },
    { what: "sum over the last axis", inputs: [[5, 3], ints([2, 0, 1, 1, 2], [5])], run: ([z, y]) => pixelCrossEntropy(z, y, { axis: -1, reduction: 'sum' }), saves: 1 },
  ],
  upsampleNearest: [{ what: 'non-integer scale', inputs: [[1, 2, 3, 2]], run: ([x]) => upsampleNearest(x, { size: [5, 5] }) }],
  roiAlign: [{ what: 'adaptive sampling', inputs: [[2, 2, 6, 7], { values: [0, 0.5, 0.5, 4, 3, 1, 1, 2, 6, 5, 0, -1, -1, 2, 2], shape: [3, 5] }], run: ([x, q]) => roiAlign(x, q, { outputSize: [2, 3] }) }],
  multiScaleRoiAlign: [{
    what: 'over 2 levels, one frozen',
    inputs: [[1, 2, 6, 6], fixed([1, 2, 3, 3]), { values: [0, 0.5, 1, 4, 5, 0, 2, 2, 9, 10, 0, 1, 0, 11, 6], shape: [3, 5] }, ints([0, 1, 1], [3])],
    run: ([f0, f1, q, lv]) => multiScaleRoiAlign([f0, f1], q, lv, { outputSize: [2, 2], scales: [0.5, 0.25], samplingRatio: 2 }),
  }],
};

function make(inputs: Spec[], device: Backend): Tensor[] {
  return inputs.map((s) => {
    if (Array.isArray(s)) return tensor(randomArray(s.reduce((a, b) => a * b, 1)), s, { device }).requireGrad();
    return tensor(s.values, s.shape, { device, dtype: s.dtype ?? 'f32' });
  });
}

/** Settles the queue, so released buffers are back in the pool's free lists. */
function settle(): void {
  if (hasWebGPU()) runtime().flush();
}
const pool = () => (hasWebGPU() ? runtime().pool.getStats() : null);

/** The modes a graph ends in: backpropagated once; never backpropagated; retained and backpropagated twice. */
async function exercise(s: Sample, device: Backend): Promise<{ savedTensors: number }> {
  let savedTensors = 0;
  // 1. forward + backward, then the user disposes what it owns: inputs (with their .grad), output, seed gradient
  {
    const xs = make(s.inputs, device);
    const before = liveTensorCount();
    const y = s.run(xs);
    savedTensors = liveTensorCount() - before - 1;
    const g = tensor(randomArray(y.size, 0.5, 1.5), [...y.shape], { device });
    y.backward(g);
    for (const x of xs) if (x.requiresGrad) expect(x.grad, 'a gradient for every input that requires grad').not.toBeNull();
    await Promise.all(xs.filter((x) => x.grad).map((x) => x.grad!.data()));
    // the graph is freed: a second backward through it fails loudly
    expect(() => y.backward(g)).toThrow(/freed/);
    for (const t of [...xs, y, g]) t.dispose();
  }
  // 2. a graph that is never backpropagated: disposing the output frees what the forward saved
  {
    const xs = make(s.inputs, device);
    const y = s.run(xs);
    for (const t of [...xs, y]) t.dispose();
  }
  // 3. a retained graph: two backward passes through it, then the output is disposed
  {
    const xs = make(s.inputs, device);
    const y = s.run(xs);
    const g = tensor(randomArray(y.size, 0.5, 1.5), [...y.shape], { device });
    y.backward(g, { retainGraph: true });
    y.backward(g, { retainGraph: true });
    for (const t of [...xs, y, g]) t.dispose();
  }
  // 4. without grad nothing is recorded or saved
  {
    const xs = make(s.inputs, device);
    const before = liveTensorCount();
    const y = noGrad(() => s.run(xs));
    expect(y.node).toBeNull();
    expect(liveTensorCount(), 'only the output is alive after a forward under noGrad').toBe(before + 1);
    for (const t of [...xs, y]) t.dispose();
  }
  settle();
  return { savedTensors };
}

describe('the tape frees what backward saved, for every op of the op table', () => {
  it('every op-table entry has a sample here', () => {
    expect([...OP_TABLE.keys()].filter((op) => !SAMPLES[op])).toEqual([]);
  });

  const devices: Backend[] = ['cpu', 'webgpu'];
  for (const op of OP_TABLE.keys()) {
    for (const s of SAMPLES[op] ?? []) {
      it(`${op}${s.what ? ` (${s.what})` : ''}: no live tensor and no pool growth after backward, an unused graph or a retained one`, async () => {
        for (const device of devices) {
          if (device === 'webgpu' && !hasWebGPU()) continue;
          // warm up: kernels compiled, the pool holds what this op needs
          await exercise(s, device);
          const live = liveTensorCount();
          const before = pool();
          const { savedTensors } = await exercise(s, device);
          expect(liveTensorCount(), `${device}: tensors left alive`).toBe(live);
          if (device === 'webgpu') {
            const after = pool()!;
            expect(after.liveBytes, 'webgpu: bytes held by live tensors').toBe(before!.liveBytes);
            expect(after.totalBytes, 'webgpu: pool growth').toBe(before!.totalBytes);
          }
          if (s.saves && !(op === 'conv2d' && device === 'cpu')) expect(savedTensors, `${device}: the forward saves state (so its freeing is tested)`).toBeGreaterThanOrEqual(s.saves);
        }
      });
    }
  }

  it('conv2d on a GPU adapter: the explicit path saves its columns, and frees them', async () => {
    if (!hasWebGPU()) return;
    const s = SAMPLES.conv2d[0];
    const { savedTensors } = await exercise(s, 'webgpu');
    // a fallback (CPU) adapter takes the explicit im2col path, which keeps the columns; a real GPU
    // the implicit one, which saves nothing
    if (device().info.isFallbackAdapter) expect(savedTensors).toBeGreaterThanOrEqual(1);
  });

  it('inside a scope, a graph left without backward is freed with the scope', () => {
    const x = tensor(randomArray(2 * 2 * 4 * 4), [2, 2, 4, 4], { device: 'cpu' }).requireGrad();
    const live = liveTensorCount();
    scope(() => {
      nn.maxPool2d(nn.batchNorm(x, null, null, null, null, { training: true }), { kernelSize: 2 });
    });
    expect(liveTensorCount()).toBe(live);
    x.dispose();
  });

  it('a backward through an output that was disposed, whose op saved state, fails loudly', () => {
    const x = tensor(randomArray(2 * 1 * 4 * 4), [2, 1, 4, 4], { device: 'cpu' }).requireGrad();
    const y = nn.maxPool2d(x, { kernelSize: 2 });
    const loss = ag.sum(ag.mul(y, y.reshape([...y.shape]))); // the view keeps y's storage readable
    y.dispose();
    expect(() => loss.backward()).toThrow(/maxPool2d: the state its forward saved was freed/);
    for (const t of [x, loss]) t.dispose();
  });
});
