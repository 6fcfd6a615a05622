// Kernel microbenchmarks on the current WebGPU adapter: GFLOP/s of matmul (square sizes, the
// im2col GEMMs of ResNet-50 3x3/1x1 layers, a 2048 -> 1000 classifier) and GB/s of elementwise,
// reduction and softmax kernels, each beside the same op in tfjs-backend-webgpu running on the
// same Dawn adapter in the same process (its own GPUDevice).
//
//   node bench/kernels.js [--json FILE] [--sizes 256,512,...] [--quick] [--reps N] [--no-peer] [--filter REGEX]
//
// Every figure is the median of >= 10 timed runs after warm-up. A run records the op (repeated
// `inner` times when one launch is too short to time, the same count for both libraries), submits
// it, and waits for the device queue to drain (onSubmittedWorkDone); results are disposed inside
// the run so memory stays flat. Our runs and tfjs's alternate, so load from other processes on a
// shared machine biases neither side. Bytes for GB/s count each input read once and the output written once.

import { writeFileSync } from 'node:fs';
// the ops are the raw kernels (`raw`), not the taped top-level ones
import { gpuEntry, init, randn, raw, runtime, scope, type Tensor } from '../index.node.js';

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
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, reps: 10, peer: true };
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
    else if (a === '--reps') args.reps = Math.max(10, Number.parseInt(value(), 10));
    else if (a === '--no-peer') args.peer = false;
    else if (a === '--filter') args.filter = new RegExp(value());
    else throw new Error(`unknown argument ${a} (use --json FILE, --sizes 256,512, --quick, --reps N, --no-peer, --filter REGEX)`);
  }
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
    for (const [layer, cin, cout, hw, taps] of convs) list.push(gemmCase(`resnet50 ${layer} b${batch}`, cout, cin * taps, batch * hw * hw));
    list.push(gemmCase('classifier 2048->1000 b256', args.quick ? 64 : 256, 2048, 1000, true));
    list.push(...convCases(args, fallback));
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
  if (!args.sizes) list.push(...primitiveCases(args));
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
  const quickLayers = args.quick ? layers.filter((l) => l.name.includes('conv4_x 3x3') || l.name.includes('cifar 3x3 16ch')) : layers;
  return [...quickLayers.flatMap((l) => (['forward', 'dgrad', 'wgrad'] as const).map((pass) => convCase(l, pass))), convTransposeCase(args, fallback)];
}

/** Mask R-CNN's mask head up-sampling: ConvTranspose2d(256, 256, 2, stride 2) on 14x14 ROI features. */
function convTransposeCase(args: Args, fallback: boolean): Case {
  const rois = args.quick ? 8 : fallback ? 32 : 128;
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

async function main(): Promise<void> {
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
  const header = ['name', 'shape', 'ms', 'rate', 'tfjs ms', 'tfjs rate', 'ratio'];
  console.log(`\n${header.join(' | ')}\n${header.map(() => '---').join(' | ')}`);
  for (const c of cases(args, fallback).filter((c) => !args.filter || args.filter.test(c.name))) {
    const work = c.flops ?? c.bytes!;
    const unit = c.flops ? 'GFLOP/s' : 'GB/s';
    const ourCase = c.ours();
    const inner = await innerCount(ours, ourCase.op, c.outBytes);
    const peerCase = peer && c.peer ? c.peer(peer.tf) : null;
    const [ms, tfjsMs] = await timeOps([{ runner: ours, op: ourCase.op }, ...(peerCase && peer ? [{ runner: peer.runner, op: peerCase.op }] : [])], inner, args.reps);
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
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
