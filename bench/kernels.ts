// Kernel microbenchmarks on the current WebGPU adapter: GFLOP/s of matmul (square sizes, the
// im2col GEMMs of ResNet-50 3x3/1x1 layers, a 2048 -> 1000 classifier) and GB/s of elementwise,
// reduction and softmax kernels, each beside the same op in tfjs-backend-webgpu running on the
// same Dawn adapter in the same process (its own GPUDevice).
//
//   node bench/kernels.js [--json FILE] [--sizes 256,512,...] [--quick] [--reps N] [--no-peer] [--filter REGEX] [--det-full]
//
// Every figure is the median of >= 10 timed runs after 2 warm-up runs (--quick: 5 runs after 1,
// fewer and smaller cases, one or two per kernel family: a smoke run of every family in minutes). A run records the op (repeated
// `inner` times when one launch is too short to time, the same count for both libraries), submits
// it, and waits for the device queue to drain (onSubmittedWorkDone); results are disposed inside
// the run so memory stays flat. Our runs and tfjs's alternate, so load from other processes on a
// shared machine biases neither side. Bytes for GB/s count each input read once and the output written once.

import { writeFileSync } from 'node:fs';
// the ops are the raw kernels (`raw`), not the taped top-level ones
import { gpuEntry, init, randn, raw, runtime, scope, tensor, type Tensor } from '../index.node.js';

interface Row {
  name: string;
  shape: string;
  ms: number;
  gflops?: number;
  gbps?: number;
  tfjs_ms?: number;
  ratio?: number;
}

interface Args {
  json?: string;
  sizes?: number[];
  quick: boolean;
  reps: number;
  peer: boolean;
  /** only the rows whose name matches, e.g. --filter conv */
  filter?: RegExp;
  /** the detection rows at their stated shape (512 ROIs x 256 channels, 800x800) even on a CPU adapter */
  detFull: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, reps: 0, peer: true, detFull: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--json') args.json = value();
    else if (a === '--sizes') args.sizes = value().split(',').map((s) => Number.parseInt(s, 10));
    else if (a === '--quick') args.quick = true;
    else if (a === '--reps') args.reps = Math.max(3, Number.parseInt(value(), 10));
    else if (a === '--no-peer') args.peer = false;
    else if (a === '--filter') args.filter = new RegExp(value());
    else if (a === '--det-full') args.detFull = true;
    else throw new Error(`unknown argument ${a} (use --json FILE, --sizes 256,512, --quick, --reps N, --no-peer, --filter REGEX, --det-full)`);
  }
  if (!args.reps) args.reps = args.quick ? 5 : 10;
  if (args.sizes?.some((s) => !(s > 0))) throw new Error('--sizes takes positive integers, e.g. --sizes 256,512');
  return args;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

/** One library's way to run an op and to wait until its GPU work is done. */
interface Runner {
  run(op: () => void): void;
  sync(): Promise<void>;
}

interface Timed {
  runner: Runner;
  op: () => void;
}

/**
 * Median ms per launch of each op over `reps` timed runs of `inner` launches, after `warmup`
 * runs. The ops' runs alternate (in a rotating order), so a machine whose load drifts during the
 * measurement biases none of them.
 */
async function timeOps(ops: Timed[], inner: number, reps: number, warmup = 2): Promise<number[]> {
  const once = async ({ runner, op }: Timed): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) runner.run(op);
    await runner.sync();
    return performance.now() - t0;
  };
  for (const t of ops) for (let i = 0; i < warmup; i++) await once(t);
  const times = ops.map((): number[] => []);
  for (let r = 0; r < reps; r++) {
    for (let j = 0; j < ops.length; j++) {
      const i = (j + r) % ops.length;
      times[i].push(await once(ops[i]));
    }
  }
  return times.map((t) => median(t) / inner);
}

/** Launches per timed run: enough for ~20 ms, keeping the outputs in flight under 256 MiB. */
async function innerCount(r: Runner, op: () => void, outBytes: number): Promise<number> {
  const t0 = performance.now();
  r.run(op);
  await r.sync();
  const ms = performance.now() - t0;
  return Math.max(1, Math.min(50, Math.floor(2 ** 28 / Math.max(outBytes, 1)), Math.ceil(20 / Math.max(ms, 1e-3))));
}

// ---------------------------------------------------------------- the peer: tfjs-backend-webgpu

type TF = typeof import('@tensorflow/tfjs-core');
interface TfBackend {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

interface Peer {
  tf: TF;
  runner: Runner;
}

/** tfjs on the GPU object our device came from; tfjs requests its own device from navigator.gpu. */
async function loadPeer(): Promise<Peer | null> {
  const gpu = gpuEntry();
  if (!gpu) return null;
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  try {
    const tf: TF = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
    tf.enableProdMode();
    tf.env().set('DEBUG', false);
    // large tensors only here, but keep every op on the GPU as ours are
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    if (!(await tf.setBackend('webgpu'))) return null;
    await tf.ready();
    const be = tf.backend() as unknown as TfBackend;
    const runner: Runner = {
      run: (op) => tf.tidy(() => {
        op();
      }),
      async sync() {
        // tfjs records into its own encoder and submits every few dispatches: submit the rest, then wait on the device queue
        be.endComputePassEncoder();
        if (be.commandEncoder) be.submitQueue();
        await be.device.queue.onSubmittedWorkDone();
      },
    };
    return { tf, runner };
  } catch (e) {
    console.warn(`tfjs-backend-webgpu unavailable, no peer column: ${(e as Error).message}`);
    return null;
  }
}

// ---------------------------------------------------------------- cases

interface Case {
  name: string;
  shape: string;
  /** FLOPs (compute-bound) or bytes moved (memory-bound) per launch */
  flops?: number;
  bytes?: number;
  outBytes: number;
  ours: () => { op: () => void; inputs: Tensor[] };
  peer?: (tf: TF) => { op: () => void; inputs: { dispose(): void }[] };
}

function gemmCase(name: string, M: number, K: number, N: number, transB = false): Case {
  return {
    name,
    shape: `${M}x${K}x${N}${transB ? ' (b transposed)' : ''}`,
    flops: 2 * M * N * K,
    outBytes: 4 * M * N,
    ours: () => {
      const a = randn([M, K]);
      const b = randn(transB ? [N, K] : [K, N]);
      return { op: () => void raw.matmul(a, b, { transB }), inputs: [a, b] };
    },
    peer: (tf) => {
      const a = tf.randomNormal([M, K]);
      const b = tf.randomNormal(transB ? [N, K] : [K, N]);
      return { op: () => void tf.matMul(a, b, false, transB), inputs: [a, b] };
    },
  };
}

function memCase(name: string, shape: number[], bytes: number, outElems: number, ours: (x: Tensor, y: Tensor) => Tensor, peer: (tf: TF, x: ReturnType<TF['randomNormal']>, y: ReturnType<TF['randomNormal']>) => unknown, yShape = shape): Case {
  return {
    name,
    shape: `[${shape.join(', ')}]${yShape !== shape ? ` + [${yShape.join(', ')}]` : ''}`,
    bytes,
    outBytes: 4 * outElems,
    ours: () => {
      const x = randn(shape);
      const y = randn(yShape);
      return { op: () => void ours(x, y), inputs: [x, y] };
    },
    peer: (tf) => {
      const x = tf.randomNormal(shape);
      const y = tf.randomNormal(yShape);
      return { op: () => void peer(tf, x, y), inputs: [x, y] };
    },
  };
}

function cases(args: Args, fallback: boolean): Case[] {
  const squares = args.sizes ?? (args.quick ? [256, 512] : fallback ? [256, 512, 1024] : [256, 512, 1024, 2048, 4096]);
  const list = squares.map((n) => gemmCase(`matmul ${n}`, n, n, n));
  // ResNet-50 im2col GEMMs: M = out channels, K = in channels x 3 x 3 (or x 1), N = batch x H x W
  const batch = args.quick ? 1 : fallback ? 2 : 32;
  const convs: [string, number, number, number, number][] = [
    ['conv2_x 3x3', 64, 64, 56, 9],
    ['conv3_x 3x3', 128, 128, 28, 9],
    ['conv4_x 3x3', 256, 256, 14, 9],
    ['conv5_x 3x3', 512, 512, 7, 9],
    ['conv4_x 1x1 expand', 256, 1024, 14, 1],
  ];
  if (!args.sizes) {
    if (!args.quick) for (const [layer, cin, cout, hw, taps] of convs) list.push(gemmCase(`resnet50 ${layer} b${batch}`, cout, cin * taps, batch * hw * hw));
    list.push(gemmCase(`classifier 2048->1000 b${args.quick ? 16 : 256}`, args.quick ? 16 : 256, 2048, 1000, true));
    list.push(...convCases(args, fallback));
    list.push(...detectionCases(args, fallback));
  }
  const R = args.quick ? 512 : fallback ? 1024 : 4096;
  const C = args.quick ? 512 : fallback ? 1024 : 4096;
  const n = R * C;
  list.push(
    memCase('unary exp', [R, C], 8 * n, n, (x) => raw.unary('exp', x), (tf, x) => tf.exp(x)),
    memCase('binary add (row broadcast)', [R, C], 4 * (2 * n + C), n, (x, y) => raw.binary('add', x, y), (tf, x, y) => tf.add(x, y), [C]),
    memCase('sum last axis', [R, C], 4 * (n + R), R, (x) => raw.sum(x, 1), (tf, x) => tf.sum(x, 1)),
    memCase('sum axis 0', [R, C], 4 * (n + C), C, (x) => raw.sum(x, 0), (tf, x) => tf.sum(x, 0)),
    memCase('softmax last axis', [R, 1000], 8 * R * 1000, R * 1000, (x) => raw.softmax(x), (tf, x) => tf.softmax(x), [1]),
  );
  if (!args.sizes) list.push(...trainingCases(args, fallback), ...primitiveCases(args));
  return list;
}

// ---------------------------------------------------------------- training kernels (norm.ts, pooling.ts, optim.ts, indexing.ts)
// Batch norm in training (forward: per-channel statistics then the normalisation; backward: the two
// per-channel gradient sums then dx), ResNet's stem max pool 3x3/2 and a 2x2/2 average pool with
// their backward passes, the fused SGD-with-momentum and AdamW updates of a 2.4M-parameter tensor,
// and a row gather. The tfjs peer runs in NHWC; it has no fused batch-norm statistics or backward, so
// its rows are the ops its autograd would run (moments + batchNorm; the sums and the dx formula),
// and its optimizer rows are the op sequences of tf.train.momentum / tf.train.adam on variables.

function trainingCases(args: Args, fallback: boolean): Case[] {
  type T4 = import('@tensorflow/tfjs-core').Tensor4D;
  const [N, C, H] = args.quick ? [8, 64, 32] : fallback ? [32, 64, 32] : [32, 256, 56];
  const x4 = [N, C, H, H], n = N * C * H * H, M = N * H * H;
  const eps = 1e-5;
  const list: Case[] = [
    {
      name: 'batchnorm forward (training)', shape: `[${x4.join(', ')}]`, bytes: 8 * n, outBytes: 4 * n,
      ours: () => {
        const x = randn(x4), w = randn([C]), b = randn([C]);
        const op = () => {
          const st = raw.batchNormStats(x);
          void raw.batchNormApply(x, st.mean, st.var, w, b, eps);
        };
        return { op, inputs: [x, w, b] };
      },
      peer: (tf) => {
        const x = tf.randomNormal([N, H, H, C]) as T4, w = tf.randomNormal([C]), b = tf.randomNormal([C]);
        const op = () => {
          const { mean, variance } = tf.moments(x, [0, 1, 2]);
          void tf.batchNorm(x, mean, variance, b, w, eps);
        };
        return { op, inputs: [x, w, b] };
      },
    },
    {
      name: 'batchnorm backward (training)', shape: `[${x4.join(', ')}]`, bytes: 12 * n, outBytes: 4 * n,
      ours: () => {
        const x = randn(x4), g = randn(x4), w = randn([C]);
        const st = raw.batchNormStats(x);
        const op = () => void raw.batchNormBackward(g, x, st.mean, st.var, w, eps, { training: true, paramGrads: true });
        return { op, inputs: [x, g, w, st.mean, st.var] };
      },
      peer: (tf) => {
        const x = tf.randomNormal([N, H, H, C]) as T4, dy = tf.randomNormal([N, H, H, C]) as T4, w = tf.randomNormal([C]);
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        const op = () => {
          const r = tf.rsqrt(tf.add(variance, eps));
          const xhat = tf.mul(tf.sub(x, mean), r);
          const sdy = tf.sum(dy, [0, 1, 2]);
          const sdyx = tf.sum(tf.mul(dy, xhat), [0, 1, 2]);
          void tf.mul(tf.mul(w, r), tf.sub(tf.sub(dy, tf.div(sdy, M)), tf.mul(xhat, tf.div(sdyx, M))));
        };
        return { op, inputs: [x, dy, w, mean, variance] };
      },
    },
  ];
  // pooling: ResNet's stem max pool on [N, 64, 2H, 2H] and a 2x2/2 average pool
  const [PN, PC, PH] = args.quick ? [4, 64, 56] : fallback ? [8, 64, 112] : [32, 64, 112];
  const p4 = [PN, PC, PH, PH], pn = PN * PC * PH * PH;
  const maxOpts = { kernelSize: 3, stride: 2, padding: 1 };
  const avgOpts = { kernelSize: 2, stride: 2 };
  const OH = Math.floor((PH - 1) / 2) + 1, on = PN * PC * OH * OH, an = pn / 4;
  list.push(
    {
      name: 'maxPool2d 3x3/2', shape: `[${p4.join(', ')}]`, bytes: 4 * pn + 8 * on, outBytes: 8 * on,
      ours: () => {
        const x = randn(p4);
        return { op: () => void raw.maxPool2d(x, maxOpts), inputs: [x] };
      },
      peer: (tf) => {
        const x = tf.randomNormal([PN, PH, PH, PC]) as T4;
        return { op: () => void tf.maxPool(x, 3, 2, 1), inputs: [x] };
      },
    },
    {
      name: 'maxPool2d 3x3/2 backward', shape: `[${p4.join(', ')}]`, bytes: 4 * pn + 8 * on, outBytes: 4 * pn,
      ours: () => {
        const x = randn(p4);
        const { out, indices } = raw.maxPool2d(x, maxOpts);
        const g = randn(out.shape);
        const geo = raw.poolGeometry('bench', x, maxOpts);
        return { op: () => void raw.maxPool2dBackward(g, indices, p4, geo), inputs: [x, out, indices, g] };
      },
      peer: (tf) => {
        const x = tf.randomNormal([PN, PH, PH, PC]) as T4;
        const y = tf.maxPool(x, 3, 2, 1);
        const dy = tf.randomNormal(y.shape) as T4;
        const op = () => void tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, { filterSize: 3, strides: 2, pad: 1 });
        return { op, inputs: [x, y, dy] };
      },
    },
    {
      name: 'avgPool2d 2x2/2', shape: `[${p4.join(', ')}]`, bytes: 4 * (pn + an), outBytes: 4 * an,
      ours: () => {
        const x = randn(p4);
        return { op: () => void raw.avgPool2d(x, avgOpts), inputs: [x] };
      },
      peer: (tf) => {
        const x = tf.randomNormal([PN, PH, PH, PC]) as T4;
        return { op: () => void tf.avgPool(x, 2, 2, 'valid'), inputs: [x] };
      },
    },
    {
      name: 'avgPool2d 2x2/2 backward', shape: `[${p4.join(', ')}]`, bytes: 4 * (pn + an), outBytes: 4 * pn,
      ours: () => {
        const x = randn(p4);
        const geo = raw.poolGeometry('bench', x, avgOpts);
        const g = randn([PN, PC, PH / 2, PH / 2]);
        return { op: () => void raw.avgPool2dBackward(g, p4, geo), inputs: [x, g] };
      },
      peer: (tf) => {
        const x = tf.randomNormal([PN, PH, PH, PC]) as T4;
        const dy = tf.randomNormal([PN, PH / 2, PH / 2, PC]) as T4;
        const op = () => void tf.engine().runKernel('AvgPoolGrad', { dy, input: x }, { filterSize: 2, strides: 2, pad: 'valid' });
        return { op, inputs: [x, dy] };
      },
    },
  );
  // optimizer updates of one parameter tensor (ResNet-50's largest, 2048 x 512 x 3 x 3 = 9.4M; 2.4M on a CPU adapter)
  const P = args.quick ? 1 << 20 : fallback ? 2_359_296 : 9_437_184;
  list.push(
    {
      name: 'sgd momentum update', shape: `[${P}]`, bytes: 20 * P, outBytes: 8 * P,
      ours: () => {
        const w = randn([P]), g = randn([P]), b = randn([P]);
        const h = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false };
        return { op: () => raw.sgdUpdate(w, g, b, h, false), inputs: [w, g, b] };
      },
      peer: (tf) => {
        const w = tf.variable(tf.randomNormal([P])), b = tf.variable(tf.randomNormal([P])), g = tf.randomNormal([P]);
        const op = () => {
          const d = tf.add(g, tf.mul(w, 1e-4));
          const m = tf.add(tf.mul(b, 0.9), d);
          b.assign(m);
          w.assign(tf.sub(w, tf.mul(m, 0.1)));
        };
        return { op, inputs: [w, b, g] };
      },
    },
    {
      name: 'adamw update', shape: `[${P}]`, bytes: 28 * P, outBytes: 12 * P,
      ours: () => {
        const w = randn([P]), g = randn([P]), m = randn([P]), v = raw.unary('abs', randn([P]));
        const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
        return { op: () => raw.adamwUpdate(w, g, { expAvg: m, expAvgSq: v, maxExpAvgSq: null }, h, 10), inputs: [w, g, m, v] };
      },
      peer: (tf) => {
        const w = tf.variable(tf.randomNormal([P])), m = tf.variable(tf.randomNormal([P])), v = tf.variable(tf.abs(tf.randomNormal([P]))), g = tf.randomNormal([P]);
        const op = () => {
          const m2 = tf.add(tf.mul(m, 0.9), tf.mul(g, 0.1));
          const v2 = tf.add(tf.mul(v, 0.999), tf.mul(tf.square(g), 0.001));
          m.assign(m2);
          v.assign(v2);
          w.assign(tf.sub(tf.mul(w, 1 - 1e-5), tf.div(tf.mul(m2, 1e-3 / 0.651), tf.add(tf.sqrt(tf.div(v2, 0.00995)), 1e-8))));
        };
        return { op, inputs: [w, m, v, g] };
      },
    },
  );
  // row gather: an embedding lookup / ROI feature gather of E rows of F features out of V
  const [V, E, F] = args.quick ? [10_000, 20_000, 32] : [50_000, 100_000, 64];
  list.push({
    name: 'gather rows', shape: `[${V}, ${F}] by ${E} ids`, bytes: 4 * (2 * E * F + E), outBytes: 4 * E * F,
    ours: () => {
      const x = randn([V, F]);
      const idx = raw.cast(raw.unary('affine', raw.rand([E]), V * 0.999999, 0), 'i32');
      return { op: () => void raw.gather(x, idx, 0), inputs: [x, idx] };
    },
    peer: (tf) => {
      const x = tf.randomNormal([V, F]);
      const idx = tf.randomUniform([E], 0, V, 'int32');
      return { op: () => void tf.gather(x, idx, 0), inputs: [x, idx] };
    },
  });
  return list;
}

// ---------------------------------------------------------------- convolution (kernels/conv.ts)
// Forward, input gradient (dgrad) and weight gradient (wgrad) of ResNet-50 layers at batch 8 and of
// the ResNet-32 CIFAR 3x3 layers at batch 128 (smaller batches on a CPU adapter and with --quick);
// each pass counts 2·N·C_out·OH·OW·C_in/groups·KH·KW FLOPs. The peer runs tfjs's Conv2D,
// Conv2DBackpropInput and Conv2DBackpropFilter kernels in its NHWC layout (it has no grouped conv).

interface ConvLayer {
  name: string;
  batch: number;
  c: number;
  co: number;
  hw: number;
  k: number;
  stride: number;
  groups?: number;
}

type ConvPass = 'forward' | 'dgrad' | 'wgrad';

function convCase(l: ConvLayer, pass: ConvPass): Case {
  const groups = l.groups ?? 1;
  const pad = (l.k - 1) >> 1;
  const xShape = [l.batch, l.c, l.hw, l.hw];
  const wShape = [l.co, l.c / groups, l.k, l.k];
  const o = raw.conv2dGeometry('bench', xShape, wShape, { stride: l.stride, padding: pad, groups });
  const yShape = [l.batch, l.co, o.OH, o.OW];
  const opts = { stride: l.stride, padding: pad, groups };
  const outElems = pass === 'forward' ? l.batch * l.co * o.OH * o.OW : pass === 'dgrad' ? l.batch * l.c * l.hw * l.hw : l.co * (l.c / groups) * l.k * l.k;
  const peer = groups === 1
    ? (tf: TF) => {
      const x = tf.randomNormal([l.batch, l.hw, l.hw, l.c]) as import('@tensorflow/tfjs-core').Tensor4D;
      const w = tf.randomNormal([l.k, l.k, l.c, l.co]) as import('@tensorflow/tfjs-core').Tensor4D;
      const dy = tf.randomNormal([l.batch, o.OH, o.OW, l.co]) as import('@tensorflow/tfjs-core').Tensor4D;
      const padding: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [pad, pad], [pad, pad], [0, 0]];
      const op = {
        forward: () => void tf.conv2d(x, w, l.stride, padding),
        dgrad: () => void tf.conv2dTranspose(dy, w, [l.batch, l.hw, l.hw, l.c], l.stride, padding),
        wgrad: () => void tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: [l.stride, l.stride], pad: padding, dataFormat: 'NHWC', filterShape: [l.k, l.k, l.c, l.co] }),
      }[pass];
      return { op, inputs: [x, w, dy] };
    }
    : undefined;
  return {
    name: `${l.name} ${pass}`,
    shape: `b${l.batch} ${l.c}->${l.co} ${l.hw}x${l.hw} k${l.k} s${l.stride}${groups > 1 ? ` g${groups}` : ''}`,
    flops: 2 * l.batch * l.co * o.OH * o.OW * (l.c / groups) * l.k * l.k,
    outBytes: 4 * outElems,
    ours: () => {
      const x = randn(xShape);
      const w = randn(wShape);
      const dy = randn(yShape);
      const op = {
        forward: () => void raw.conv2d(x, w, null, opts),
        dgrad: () => void raw.conv2dInputGrad(dy, w, xShape, opts),
        wgrad: () => void raw.conv2dWeightGrad(dy, x, wShape, opts),
      }[pass];
      return { op, inputs: [x, w, dy] };
    },
    peer,
  };
}

function convCases(args: Args, fallback: boolean): Case[] {
  const b50 = args.quick ? 1 : fallback ? 2 : 8;
  const b32 = args.quick ? 8 : fallback ? 32 : 128;
  const layers: ConvLayer[] = [
    { name: 'resnet50 stem 7x7/2', batch: b50, c: 3, co: 64, hw: 224, k: 7, stride: 2 },
    { name: 'resnet50 conv2_x 3x3', batch: b50, c: 64, co: 64, hw: 56, k: 3, stride: 1 },
    { name: 'resnet50 conv4_x 3x3', batch: b50, c: 256, co: 256, hw: 14, k: 3, stride: 1 },
    { name: 'resnet50 conv4_x 1x1 expand', batch: b50, c: 256, co: 1024, hw: 14, k: 1, stride: 1 },
    { name: 'resnet50 conv5_x 1x1/2 downsample', batch: b50, c: 1024, co: 2048, hw: 14, k: 1, stride: 2 },
    { name: 'resnext50 conv3_x 3x3 32 groups', batch: b50, c: 256, co: 256, hw: 28, k: 3, stride: 1, groups: 32 },
    { name: 'resnet32 cifar 3x3 16ch', batch: b32, c: 16, co: 16, hw: 32, k: 3, stride: 1 },
    { name: 'resnet32 cifar 3x3/2 16->32ch', batch: b32, c: 16, co: 32, hw: 32, k: 3, stride: 2 },
    { name: 'resnet32 cifar 3x3 32ch', batch: b32, c: 32, co: 32, hw: 16, k: 3, stride: 1 },
    { name: 'resnet32 cifar 3x3 64ch', batch: b32, c: 64, co: 64, hw: 8, k: 3, stride: 1 },
  ];
  const quickLayers = args.quick ? layers.filter((l) => l.name.includes('cifar 3x3 16ch')) : layers;
  return [...quickLayers.flatMap((l) => (['forward', 'dgrad', 'wgrad'] as const).map((pass) => convCase(l, pass))), convTransposeCase(args, fallback)];
}

/** Mask R-CNN's mask head up-sampling: ConvTranspose2d(256, 256, 2, stride 2) on 14x14 ROI features. */
function convTransposeCase(args: Args, fallback: boolean): Case {
  const rois = args.quick ? 2 : fallback ? 32 : 128;
  const xShape = [rois, 256, 14, 14], wShape = [256, 256, 2, 2];
  return {
    name: 'mask head convTranspose2d 2x2/2',
    shape: `${rois} rois 256->256 14x14 -> 28x28`,
    flops: 2 * rois * 256 * 14 * 14 * 256 * 4,
    outBytes: 4 * rois * 256 * 28 * 28,
    ours: () => {
      const x = randn(xShape);
      const w = randn(wShape);
      return { op: () => void raw.convTranspose2d(x, w, null, { stride: 2 }), inputs: [x, w] };
    },
    peer: (tf) => {
      const x = tf.randomNormal([rois, 14, 14, 256]) as import('@tensorflow/tfjs-core').Tensor4D;
      const w = tf.randomNormal([2, 2, 256, 256]) as import('@tensorflow/tfjs-core').Tensor4D;
      return { op: () => void tf.conv2dTranspose(x, w, [rois, 28, 28, 256], 2, 'valid'), inputs: [x, w] };
    },
  };
}

// ---------------------------------------------------------------- detection (kernels/roi-align.ts, boxes.ts, nms.ts)
// ROI align forward/backward of Mask R-CNN's box head: 512 ROIs x 256 channels -> 7x7, sampling
// ratio 2, over a 4-level FPN pyramid (strides 4..32) of an 800x800 image; each ROI pooled from its
// level. On a CPU adapter 128 ROIs x 64 channels over a 512x512 image (--quick: 64 ROIs x 16 channels), unless
// --det-full. The peer is tfjs cropAndResize (NHWC, boxes normalised, one bilinear sample per
// output cell, no averaging and no gradient), run per level on the ROIs of that level. NMS: 4000 boxes -> at most 1000 kept
// (threshold 0.7, the RPN's), against tfjs nonMaxSuppression, which reads the boxes back and runs on
// the CPU. The score order (a full descending sort of 4000 scores) against tfjs topk(k = n).

function detectionCases(args: Args, fallback: boolean): Case[] {
  const small = !args.detFull && (args.quick || fallback);
  const K = args.quick && !args.detFull ? 64 : small ? 128 : 512, C = args.quick && !args.detFull ? 16 : small ? 64 : 256, img = small ? 512 : 800, P = 7, sr = 2;
  const strides = [4, 8, 16, 32];
  const sizes = strides.map((s) => Math.ceil(img / s));
  // ROIs of sqrt(area) 32..512 px, some partly outside, and their FPN level (k0 = 4, s0 = 224, k in 2..5)
  const u = Float32Array.from({ length: K * 4 }, (_, i) => ((Math.sin(i * 12.9898) * 43758.5453) % 1 + 1) % 1);
  const boxes = new Float32Array(K * 4), rois = new Float32Array(K * 5), levels = new Int32Array(K);
  for (let k = 0; k < K; k++) {
    const side = 32 * 2 ** (u[k * 4] * 4), aspect = 2 ** (u[k * 4 + 1] * 2 - 1);
    const w = side * Math.sqrt(aspect), h = side / Math.sqrt(aspect);
    const x = u[k * 4 + 2] * (img - w / 2), y = u[k * 4 + 3] * (img - h / 2);
    boxes.set([x, y, x + w, y + h], k * 4);
    rois.set([0, x, y, x + w, y + h], k * 5);
    levels[k] = Math.min(Math.max(Math.floor(4 + Math.log2(Math.sqrt(w * h) / 224) + 1e-6), 2), 5) - 2;
  }
  const shape = `${K} rois x ${C}ch -> ${P}x${P}, pyramid ${sizes.map((s) => `${s}x${s}`).join('/')}`;
  const featElems = sizes.reduce((a, s) => a + C * s * s, 0);
  const outElems = K * C * P * P;
  const feats = () => sizes.map((s) => randn([1, C, s, s]));
  const level = (q: number) => [...levels.keys()].filter((k) => levels[k] === q);
  const roiAlignPeer = (tf: TF) => {
    const maps = sizes.map((s) => tf.randomNormal([1, s, s, C]) as import('@tensorflow/tfjs-core').Tensor4D);
    const per = sizes.map((s, q) => {
      const ks = level(q);
      // normalised (y1, x1, y2, x2) on the level's map, as roi_align's coordinates at scale 1/stride
      const b = tf.tensor2d(ks.flatMap((k) => [boxes[k * 4 + 1], boxes[k * 4], boxes[k * 4 + 3], boxes[k * 4 + 2]].map((v) => v / strides[q] / (s - 1))), [ks.length, 4]);
      return { b, ind: tf.tensor1d(ks.map(() => 0), 'int32'), n: ks.length };
    });
    const op = () => {
      for (let q = 0; q < 4; q++) if (per[q].n) void tf.image.cropAndResize(maps[q], per[q].b, per[q].ind, [P, P]);
    };
    return { op, inputs: [...maps, ...per.flatMap((p) => [p.b, p.ind])] };
  };
  const nmsN = 4000, iouN = 1000;
  const hash = (i: number): number => ((Math.sin(i * 78.233 + 1.7) * 43758.5453) % 1 + 1) % 1;
  // 4000 boxes of side 20..200 over an 800x800 image: the dense overlap of RPN proposals
  const nmsBoxes = new Float32Array(nmsN * 4);
  for (let j = 0; j < nmsN; j++) {
    const x = hash(4 * j) * 700, y = hash(4 * j + 1) * 700, w = 20 + hash(4 * j + 2) * 180, h = 20 + hash(4 * j + 3) * 180;
    nmsBoxes.set([x, y, x + w, y + h], j * 4);
  }
  const nmsScores = Float32Array.from({ length: nmsN }, (_, i) => ((Math.sin(i * 3.7) * 1e4) % 1 + 1) % 1);
  return [
    {
      name: 'roi align forward (4 levels)',
      shape,
      bytes: 4 * (featElems + outElems),
      outBytes: 4 * outElems,
      ours: () => {
        const f = feats();
        const r = tensor(rois, [K, 5]);
        const lv = tensor(levels, [K], { dtype: 'i32' });
        const op = () => void raw.roiAlignLevels(f, r, lv, { outputSize: P, scales: strides.map((s) => 1 / s), samplingRatio: sr });
        return { op, inputs: [...f, r, lv] };
      },
      peer: roiAlignPeer,
    },
    // sampling ratio 2: the CSR path; adaptive sampling: the gather path (kernels/roi-align.ts)
    ...[sr, -1].map((ratio): Case => ({
      name: `roi align backward (4 levels${ratio > 0 ? '' : ', adaptive sampling'})`,
      shape,
      bytes: 4 * (featElems + outElems),
      outBytes: 4 * featElems,
      ours: () => {
        const g = randn([K, C, P, P]);
        const r = tensor(rois, [K, 5]);
        const lv = tensor(levels, [K], { dtype: 'i32' });
        const op = () => {
          sizes.forEach((s, q) => void raw.roiAlignBackward(g, r, [1, C, s, s], { outputSize: P, spatialScale: 1 / strides[q], samplingRatio: ratio }, { levels: lv, level: q }));
        };
        return { op, inputs: [g, r, lv] };
      },
    })),
    {
      name: 'box iou matrix',
      shape: `${iouN} x ${iouN}`,
      bytes: 4 * (8 * iouN + iouN * iouN),
      outBytes: 4 * iouN * iouN,
      ours: () => {
        const a = tensor(nmsBoxes.subarray(0, iouN * 4), [iouN, 4]);
        const b = tensor(nmsBoxes.subarray(iouN * 4, 2 * iouN * 4), [iouN, 4]);
        return { op: () => void raw.boxIou(a, b), inputs: [a, b] };
      },
    },
    {
      name: 'nms 4000 -> 1000',
      shape: `${nmsN} boxes, iou 0.7`,
      bytes: 4 * 5 * nmsN,
      outBytes: 4 * 1000,
      ours: () => {
        const b = tensor(nmsBoxes, [nmsN, 4]);
        const sc = tensor(nmsScores, [nmsN]);
        return { op: () => void raw.nms(b, sc, 0.7, { maxOutput: 1000 }), inputs: [b, sc] };
      },
      peer: (tf) => {
        // tfjs wants (y1, x1, y2, x2): the same boxes transposed
        const b = tf.tensor2d(Array.from({ length: nmsN * 4 }, (_, i) => nmsBoxes[(i & ~3) + [1, 0, 3, 2][i & 3]]), [nmsN, 4]);
        const sc = tf.tensor1d(nmsScores);
        const op = () => {
          const warn = console.warn;
          console.warn = () => {}; // tfjs-webgpu warns on every synchronous NMS
          try {
            void tf.image.nonMaxSuppression(b, sc, 1000, 0.7);
          } finally {
            console.warn = warn;
          }
        };
        return { op, inputs: [b, sc] };
      },
    },
    {
      name: 'score order (full descending sort)',
      shape: `${nmsN} scores`,
      bytes: 8 * nmsN,
      outBytes: 4 * nmsN,
      ours: () => {
        const sc = tensor(nmsScores, [nmsN]);
        return { op: () => void raw.scoreOrder(sc), inputs: [sc] };
      },
      peer: (tf) => {
        const sc = tf.tensor1d(nmsScores);
        return { op: () => void tf.topk(sc, nmsN), inputs: [sc] };
      },
    },
  ];
}

// ---------------------------------------------------------------- sort, top-k, segments (kernels/sort.ts, segment.ts)
// GB/s counts the input read once and the outputs written once. The peer: tfjs topk (no stable
// sort exists there; its topk of k = n is the nearest to a full sort).

function primitiveCases(args: Args): Case[] {
  const list: Case[] = [];
  for (const n of args.quick ? [4000] : [4000, 100_000]) {
    list.push({
      name: `sort descending ${n}`, shape: `[${n}]`, bytes: 12 * n, outBytes: 8 * n,
      ours: () => {
        const x = randn([n]);
        return { op: () => void raw.sort(x, { descending: true }), inputs: [x] };
      },
      peer: (tf) => {
        const x = tf.randomNormal([n]);
        return { op: () => void tf.topk(x, n, true), inputs: [x] };
      },
    });
  }
  const [B, n, k] = args.quick ? [2, 4000, 100] : [8, 4000, 1000];
  list.push({
    name: `topk ${k} of ${n}`, shape: `[${B}, ${n}]`, bytes: 4 * B * n + 8 * B * k, outBytes: 8 * B * k,
    ours: () => {
      const x = randn([B, n]);
      return { op: () => void raw.topk(x, k), inputs: [x] };
    },
    peer: (tf) => {
      const x = tf.randomNormal([B, n]);
      return { op: () => void tf.topk(x, k, true), inputs: [x] };
    },
  });
  // message passing: E edges onto V nodes with F features; gather backward: E rows into V
  const [E, V, F] = args.quick ? [20_000, 2_000, 32] : [100_000, 10_000, 64];
  const ids = (): Tensor => raw.cast(raw.unary('affine', raw.rand([E]), V * 0.999999, 0), 'i32');
  list.push({
    name: 'buildCSR', shape: `${E} ids -> ${V} segments`, bytes: 12 * E + 4 * V, outBytes: 4 * (E + V + 1),
    ours: () => {
      const idx = ids();
      return { op: () => void raw.buildCSR(idx, V), inputs: [idx] };
    },
  });
  list.push({
    name: 'segmentSum (perm)', shape: `[${E}, ${F}] -> [${V}, ${F}]`, bytes: 4 * (E * F + 2 * E + V + V * F), outBytes: 4 * V * F,
    ours: () => {
      const idx = ids();
      const v = randn([E, F]);
      const { offsets, perm } = raw.buildCSR(idx, V);
      return { op: () => void raw.segmentSum(v, offsets, { perm }), inputs: [idx, v, offsets, perm] };
    },
  });
  list.push({
    name: 'scatterAdd (gather backward)', shape: `[${E}, ${F}] -> [${V}, ${F}]`, bytes: 4 * (E * F + E + 2 * V * F), outBytes: 4 * V * F,
    ours: () => {
      const idx = ids();
      const src = randn([E, F]);
      const base = randn([V, F]);
      return { op: () => void raw.scatterAdd(base, idx, src, 0), inputs: [idx, src, base] };
    },
    peer: (tf) => {
      const idx = tf.randomUniform([E, 1], 0, V, 'int32');
      const src = tf.randomNormal([E, F]);
      return { op: () => void tf.scatterND(idx, src, [V, F]), inputs: [idx, src] };
    },
  });
  // FPN top-down: nearest 2x of a [b, 256, h, w] level; per-pixel losses over [b, 150, h, w] (ADE20K)
  const [b, hw] = args.quick ? [1, 32] : [2, 64];
  const fpn = [b, 256, hw, hw];
  list.push(memCase('upsampleNearest 2x', fpn, 4 * 5 * size(fpn), 4 * size(fpn), (x) => raw.upsampleNearest(x, { scaleFactor: 2 }),
    (tf, x) => tf.image.resizeNearestNeighbor(tf.transpose(x, [0, 2, 3, 1]) as import('@tensorflow/tfjs-core').Tensor4D, [2 * hw, 2 * hw])));
  const up = [b, 256, 2 * hw, 2 * hw];
  list.push(memCase('upsampleNearest 2x backward', up, 4 * 5 * size(fpn), size(fpn), (g) => raw.upsampleNearestBackward(g, fpn, { H: hw, W: hw, OH: 2 * hw, OW: 2 * hw, scaleH: 0.5, scaleW: 0.5 }),
    (tf, g) => tf.sum(tf.reshape(g, [b, 256, hw, 2, hw, 2]), [3, 5])));
  const seg = [b, 150, hw, hw];
  list.push(memCase('softmaxAxis 1 (per pixel)', seg, 8 * size(seg), size(seg), (x) => raw.softmaxAxis(x, 1), (tf, x) => tf.softmax(tf.transpose(x, [0, 2, 3, 1]))));
  list.push({
    name: 'softmaxCrossEntropy per pixel', shape: `[${seg.join(', ')}]`, bytes: 4 * (2 * size(seg) + 3 * b * hw * hw), outBytes: 4 * size(seg),
    ours: () => {
      const z = randn(seg);
      const y = raw.cast(raw.unary('affine', raw.rand([b, hw, hw]), 149.999, 0), 'i32');
      return { op: () => void raw.softmaxCrossEntropy(z, y, { ignoreIndex: 255 }), inputs: [z, y] };
    },
  });
  return list;
}

const size = (s: number[]): number => s.reduce((a, c) => a * c, 1);

// ---------------------------------------------------------------- main

const fmt = (x: number | undefined, digits = 2): string => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(digits));

/**
 * Seconds one case is expected to take: set-up and compiles, then the launch-count probe, the
 * warm-up and the timed runs of each side, each run lasting max(20 ms, one launch). One launch is
 * its work at a typical rate of the adapter class (lavapipe on 2 cores: ~4 GFLOP/s, ~1.5 GB/s).
 */
function estimateSeconds(c: Case, args: Args, fallback: boolean, peer: boolean): number {
  const ms = c.flops ? c.flops / (fallback ? 4e6 : 5e9) : c.bytes! / (fallback ? 1.5e6 : 5e8);
  const sides = peer && c.peer ? 2 : 1;
  const setup = fallback ? 3 * sides : 0.3 * sides;
  return setup + ((1 + sides * ((args.quick ? 1 : 2) + args.reps)) * Math.max(20, ms)) / 1000;
}

async function main(): Promise<void> {
  const started = performance.now();
  const args = parseArgs(process.argv.slice(2));
  const dev = await init({ requireWebGPU: true });
  if (!dev) throw new Error('no WebGPU adapter');
  const info = dev.info;
  console.log(`adapter: ${info.vendor || '?'} ${info.architecture || ''} ${info.description || ''}${info.isFallbackAdapter ? ' (fallback/CPU adapter)' : ''}`);
  console.log(`features: ${info.features.join(', ') || 'none'}`);
  console.log(`limits: workgroup storage ${info.limits.maxComputeWorkgroupStorageSize} B, ${info.limits.maxComputeInvocationsPerWorkgroup} invocations, storage binding ${info.limits.maxStorageBufferBindingSize} B`);
  const peer = args.peer ? await loadPeer() : null;
  console.log(`peer: ${peer ? `tfjs-core ${peer.tf.version_core} + tfjs-backend-webgpu on the same adapter` : 'none'}`);
  const ours: Runner = {
    run: (op) => scope(op),
    sync: () => runtime().sync(),
  };
  const fallback = info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(`${info.description} ${info.architecture} ${info.vendor}`);
  const rows: Row[] = [];
  const list = cases(args, fallback).filter((c) => !args.filter || args.filter.test(c.name));
  const est = list.reduce((a, c) => a + estimateSeconds(c, args, fallback, Boolean(peer)), 0);
  console.log(`${list.length} cases${args.quick ? ' (--quick)' : ''}; expected duration about ${est < 90 ? `${est.toFixed(0)} s` : `${(est / 60).toFixed(1)} min`} (estimated per case from its work at ${fallback ? 'CPU-adapter' : 'GPU'} rates; more on a loaded machine)`);
  const header = ['name', 'shape', 'ms', 'rate', 'tfjs ms', 'tfjs rate', 'ratio'];
  console.log(`\n${header.join(' | ')}\n${header.map(() => '---').join(' | ')}`);
  for (const c of list) {
    const work = c.flops ?? c.bytes!;
    const unit = c.flops ? 'GFLOP/s' : 'GB/s';
    const ourCase = c.ours();
    const inner = await innerCount(ours, ourCase.op, c.outBytes);
    const peerCase = peer && c.peer ? c.peer(peer.tf) : null;
    const [ms, tfjsMs] = await timeOps([{ runner: ours, op: ourCase.op }, ...(peerCase && peer ? [{ runner: peer.runner, op: peerCase.op }] : [])], inner, args.reps, args.quick ? 1 : 2);
    for (const t of ourCase.inputs) t.dispose();
    for (const t of peerCase?.inputs ?? []) t.dispose();
    runtime().trim();
    const rate = work / ms / 1e6;
    const row: Row = { name: c.name, shape: c.shape, ms, ...(c.flops ? { gflops: rate } : { gbps: rate }) };
    const peerRate = tfjsMs === undefined ? undefined : work / tfjsMs / 1e6;
    if (tfjsMs !== undefined) {
      row.tfjs_ms = tfjsMs;
      row.ratio = tfjsMs / ms;
    }
    rows.push(row);
    console.log([c.name, c.shape, fmt(ms), `${fmt(rate)} ${unit}`, fmt(row.tfjs_ms), peerRate === undefined ? '-' : `${fmt(peerRate)} ${unit}`, fmt(row.ratio)].join(' | '));
  }
  if (args.json) {
    writeFileSync(args.json, JSON.stringify(rows, null, 2));
    console.log(`\nwrote ${rows.length} rows to ${args.json}`);
  }
  const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
  const stats = runtime().pool.getStats();
  console.log(`\nour buffer pool: peak ${mib(stats.peakBytes)} MiB, ${mib(stats.liveBytes)} MiB live at the end`);
  console.log(`elapsed: ${((performance.now() - started) / 1000).toFixed(1)} s for ${rows.length} cases (estimated ${est.toFixed(0)} s)`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
