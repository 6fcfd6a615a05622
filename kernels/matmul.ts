// Matrix multiplication: a tiled WGSL GEMM generator with pluggable operand loads and epilogue
// (convolution reuses it as an implicit GEMM with its own loaders), the batched, broadcasting
// `matmul` launcher built on it, and its float64 CPU reference.
//
// The generator, gemmWGSL(spec), emits one compute shader for
//     C[batch] (M x N) = A[batch] (M x K) · B[batch] (K x N)
// where A, B and C are logical: the shader never indexes a buffer itself. It calls functions whose
// bodies the spec supplies, each with `batch: u32` (workgroup_id.z) and logical coordinates:
//     fn mm_readA(batch: u32, m: u32, k: u32) -> f32           A[m, k]
//     fn mm_readB(batch: u32, k: u32, n: u32) -> f32           B[k, n]
//     fn mm_write(batch: u32, m: u32, n: u32, v: f32)          stores C[m, n] = v (+ any fused epilogue)
// or, where the spec sets `vec4` (that extent must then be a multiple of 4), their vec4 forms,
// which read (write) 4 consecutive elements along the operand's contiguous axis:
//     fn mm_readA4(batch, m, k) -> vec4<f32>   A[m, k..k+3] (contiguous 'k') or A[m..m+3, k] ('m')
//     fn mm_readB4(batch, k, n) -> vec4<f32>   B[k, n..n+3] (contiguous 'n') or B[k..k+3, n] ('k')
//     fn mm_write4(batch, m, n, v: vec4<f32>)  C[m, n..n+3]
// The generator calls them only in bounds (m < M, n < N, k < K; a vec4 at its first index) and
// substitutes zeros for A and B outside, so loaders need no bounds checks of their own (a
// convolution loader still returns 0 for its padding). `decls` holds the module-scope WGSL the
// bodies use (the uniform struct `p` at binding 0, storage buffers at 1.., helpers, var<private>
// state) and `prologue` runs once per invocation before the K loop, with `batch` in scope.
//
// Tiling: a workgroup of (tn/rn) x (tm/rm) invocations computes a tm x tn block of C; each
// invocation keeps rm x rn accumulators in registers (register blocking), taking every
// (tm/rm)-th group of 4 rows and every (tn/rn)-th group of 4 columns, so neighbouring invocations
// touch neighbouring vec4s (coalesced stores, conflict-free workgroup loads). Per step of tk along
// K the workgroup stages A (tk x tm) and B (tk x tn) k-major as vec4s in workgroup memory
// (4 * tk * (tm + tn) bytes), then each invocation does tk * rm * rn/4 vec4 FMAs.

import { check, fmtShape } from './errors.js';
import { broadcastStrides } from './elementwise.js';
import { runtime, type Bound } from './runtime.js';
import { kernelBindings } from './wgsl.js';
import { mergeDims, pad8 } from './dims.js';
import { device } from './device.js';
import { Tensor, shapeSize } from './tensor.js';
import { BATCH_OFFSETS_WGSL, subgroupGemmGrid, subgroupGemmSize, subgroupGemmTile, subgroupGemmWGSL } from './gemm-subgroup.js';

/** The blocking of one workgroup: tm x tn outputs, tk deep per stage, rm x rn per invocation. */
export interface GemmTile {
  tm: number;
  tn: number;
  tk: number;
  /** Rows per invocation, a multiple of 4 dividing tm. */
  rm: number;
  /** Columns per invocation, a multiple of 4 dividing tn. */
  rn: number;
}

/** How the shader reads one operand. `contiguous` is its axis adjacent in memory (loads walk it fastest). */
export interface GemmOperand<Axis extends string> {
  contiguous: Axis;
  /** WGSL body of mm_readA(batch, m, k) -> f32 / mm_readB(batch, k, n) -> f32, or of mm_readA4 / mm_readB4 with vec4. */
  read: string;
  /** `read` returns 4 consecutive elements along `contiguous` (a vec4 load). */
  vec4?: boolean;
}

export interface GemmEpilogue {
  /** WGSL body of mm_write(batch, m, n, v: f32), or with vec4 of mm_write4(batch, m, n, v: vec4<f32>). */
  write: string;
  /** `write` stores 4 consecutive columns (needs N % 4 == 0). */
  vec4?: boolean;
}

export interface GemmSpec {
  tile: GemmTile;
  /** Module-scope WGSL: uniform struct `p` (binding 0), storage buffers (1..), helpers, private state. */
  decls: string;
  /** u32 WGSL expressions for the problem size (uniform across the workgroup, e.g. uniforms). */
  M: string;
  N: string;
  K: string;
  /** Statements run once per invocation before the K loop; `batch: u32` is in scope. */
  prologue?: string;
  a: GemmOperand<'m' | 'k'>;
  b: GemmOperand<'k' | 'n'>;
  out: GemmEpilogue;
  /** Sizes known to be multiples of tm / tn / tk: their bounds checks are left out. */
  fit?: { m?: boolean; n?: boolean; k?: boolean };
}

/** Checks a tile against the WebGPU limits this framework assumes (256 invocations, 16 KiB). */
export function checkTile(t: GemmTile, maxInvocations = 256, maxWorkgroupBytes = 16384): void {
  const { tm, tn, tk, rm, rn } = t;
  const ok = rm % 4 === 0 && rn % 4 === 0 && tm % rm === 0 && tn % rn === 0 && tk % 4 === 0 && tk > 0;
  if (!ok) throw new Error(`gemm tile ${JSON.stringify(t)}: rm, rn, tk must be multiples of 4 dividing tm, tn`);
  const threads = (tm / rm) * (tn / rn);
  if (threads > maxInvocations) throw new Error(`gemm tile ${JSON.stringify(t)}: ${threads} invocations exceed ${maxInvocations}`);
  const bytes = 4 * tk * (tm + tn);
  if (bytes > maxWorkgroupBytes) throw new Error(`gemm tile ${JSON.stringify(t)}: ${bytes} bytes of workgroup memory exceed ${maxWorkgroupBytes}`);
}

/** The dispatch grid for a gemmWGSL kernel: [ceil(N / tn), ceil(M / tm), batch]. */
export function gemmGrid(tile: GemmTile, M: number, N: number, batch: number): [number, number, number] {
  return [Math.ceil(N / tile.tn), Math.ceil(M / tile.tm), batch];
}

/**
 * WGSL that stages one operand's tile for this K step into workgroup memory: vec4 slot (kk, og)
 * holds outer elements 4og..4og+3 at depth kk. Every store writes one whole slot from one
 * invocation (no per-component stores at run-time indices); consecutive invocations take
 * neighbours along the operand's contiguous axis, so global reads coalesce.
 */
function stageTile(op: 'A' | 'B', operand: GemmOperand<string>, tile: GemmTile, threads: number, fitOuter: boolean, fitK: boolean): string {
  const outer4 = (op === 'A' ? tile.tm : tile.tn) / 4;
  const [o0, dimOuter, dst] = op === 'A' ? ['m0', 'dimM', 'mm_As'] : ['n0', 'dimN', 'mm_Bs'];
  const vec = Boolean(operand.vec4);
  const alongK = operand.contiguous === 'k';
  const read = (o: string, k: string): string => `mm_read${op}${vec ? '4' : ''}(${op === 'A' ? `batch, ${o}, ${k}` : `batch, ${k}, ${o}`})`;
  const guarded = (v: string, o: string, k: string, zero: string, checkOuter: boolean): string => {
    // '&', not '&&': SwiftShader's compile time grows exponentially with short-circuit branches (36 guards: minutes)
    const cond = [checkOuter && !fitOuter ? `(${o} < ${dimOuter})` : '', fitK ? '' : `(${k} < dimK)`].filter(Boolean).join(' & ');
    return cond ? `var ${v} = ${zero}; if (${cond}) { ${v} = ${read(o, k)}; }` : `let ${v} = ${read(o, k)};`;
  };
  // a unit is one invocation's share of a step: its (og, kk) coordinates, loads and slot stores
  let kUnits: number, body: string;
  if (vec && !alongK) {
    // one vec4 along the outer axis is one slot
    kUnits = tile.tk;
    body = `${guarded('v', `${o0} + 4u * og`, 'k0 + kk', 'vec4<f32>()', true)} ${dst}[kk * ${outer4}u + og] = v;`;
  } else if (vec) {
    // a 4x4 block: four vec4 along k (rows 4og..4og+3), transposed into four slots
    kUnits = tile.tk / 4;
    const loads = [0, 1, 2, 3].map((r) => guarded(`v${r}`, `${o0} + 4u * og + ${r}u`, 'k0 + kk', 'vec4<f32>()', true)).join(' ');
    const stores = [0, 1, 2, 3].map((q) => `${dst}[(kk + ${q}u) * ${outer4}u + og] = vec4<f32>(v0[${q}], v1[${q}], v2[${q}], v3[${q}]);`).join(' ');
    body = `${loads} ${stores}`;
  } else {
    // four scalars along the outer axis fill one slot
    kUnits = tile.tk;
    const loads = [0, 1, 2, 3].map((r) => guarded(`v${r}`, `${o0} + 4u * og + ${r}u`, 'k0 + kk', '0.0', true)).join(' ');
    body = `${loads} ${dst}[kk * ${outer4}u + og] = vec4<f32>(v0, v1, v2, v3);`;
  }
  const units = kUnits * outer4;
  const coords = alongK ? `let og = u / ${kUnits}u; let kk = ${vec ? '4u * ' : ''}(u % ${kUnits}u);` : `let og = u % ${outer4}u; let kk = u / ${outer4}u;`;
  const lines: string[] = [];
  for (let it = 0; it * threads < units; it++) {
    const inner = `${coords} ${body}`;
    lines.push(`{ let u = lid + ${it * threads}u; ${(it + 1) * threads > units ? `if (u < ${units}u) { ${inner} }` : inner} }`);
  }
  return lines.join('\n    ');
}

/** Generates the WGSL of a tiled GEMM (see the comment at the top of this file). */
export function gemmWGSL(spec: GemmSpec): string {
  const t = spec.tile;
  checkTile(t);
  const tx = t.tn / t.rn;
  const ty = t.tm / t.rm;
  const threads = tx * ty;
  const tm4 = t.tm / 4;
  const tn4 = t.tn / 4;
  const rm4 = t.rm / 4;
  const rn4 = t.rn / 4;
  const fit = spec.fit ?? {};
  const acc = (r: number, j: number): string => `c${r}_${j}`;
  const decl: string[] = [];
  for (let r = 0; r < t.rm; r++) for (let j = 0; j < rn4; j++) decl.push(`var ${acc(r, j)} = vec4<f32>();`);
  // one k of the staged tile: rm/4 + rn/4 vec4 loads from workgroup memory, rm * rn/4 vec4 FMAs
  const step: string[] = [];
  for (let i = 0; i < rm4; i++) step.push(`let a${i} = mm_As[kk * ${tm4}u + ${i * ty}u + ty];`);
  for (let j = 0; j < rn4; j++) step.push(`let b${j} = mm_Bs[kk * ${tn4}u + ${j * tx}u + tx];`);
  for (let i = 0; i < rm4; i++) {
    for (let q = 0; q < 4; q++) for (let j = 0; j < rn4; j++) step.push(`${acc(4 * i + q, j)} = fma(vec4<f32>(a${i}[${q}]), b${j}, ${acc(4 * i + q, j)});`);
  }
  const store: string[] = [];
  for (let i = 0; i < rm4; i++) {
    for (let q = 0; q < 4; q++) {
      const cols: string[] = [];
      for (let j = 0; j < rn4; j++) {
        const c = acc(4 * i + q, j);
        const n = `n0 + ${4 * j * tx}u + 4u * tx`;
        if (spec.out.vec4) {
          cols.push(fit.n ? `mm_write4(batch, m, ${n}, ${c});` : `{ let n = ${n}; if (n < dimN) { mm_write4(batch, m, n, ${c}); } }`);
        } else {
          const each = [0, 1, 2, 3].map((e) => (fit.n ? `mm_write(batch, m, n + ${e}u, ${c}[${e}]);` : `if (n + ${e}u < dimN) { mm_write(batch, m, n + ${e}u, ${c}[${e}]); }`));
          cols.push(`{ let n = ${n}; ${each.join(' ')} }`);
        }
      }
      const m = `m0 + ${4 * i * ty + q}u + 4u * ty`;
      store.push(fit.m ? `{ let m = ${m}; ${cols.join(' ')} }` : `{ let m = ${m}; if (m < dimM) { ${cols.join(' ')} } }`);
    }
  }
  const fn = (name: string, params: string, ret: string, body: string): string => `fn ${name}(batch: u32, ${params})${ret} {\n  ${body}\n}`;
  const v4 = (on: boolean | undefined): string => (on ? '4' : '');
  const elem = (on: boolean | undefined): string => (on ? 'vec4<f32>' : 'f32');
  return /* wgsl */ `
${spec.decls}
${fn(`mm_readA${v4(spec.a.vec4)}`, 'm: u32, k: u32', ` -> ${elem(spec.a.vec4)}`, spec.a.read)}
${fn(`mm_readB${v4(spec.b.vec4)}`, 'k: u32, n: u32', ` -> ${elem(spec.b.vec4)}`, spec.b.read)}
${fn(`mm_write${v4(spec.out.vec4)}`, `m: u32, n: u32, v: ${elem(spec.out.vec4)}`, '', spec.out.write)}
var<workgroup> mm_As: array<vec4<f32>, ${t.tk * tm4}>;
var<workgroup> mm_Bs: array<vec4<f32>, ${t.tk * tn4}>;

@compute @workgroup_size(${tx}, ${ty}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let batch = wid.z;
  let dimM = ${spec.M};
  let dimN = ${spec.N};
  let dimK = ${spec.K};
  let m0 = wid.y * ${t.tm}u;
  let n0 = wid.x * ${t.tn}u;
  let tx = ${tx === 1 ? '0u' : 'lid3.x'};
  let ty = ${ty === 1 ? '0u' : 'lid3.y'};
  ${spec.prologue ?? ''}
  ${decl.join('\n  ')}
  let tiles = (dimK + ${t.tk - 1}u) / ${t.tk}u;
  for (var t = 0u; t < tiles; t++) {
    let k0 = t * ${t.tk}u;
    ${stageTile('A', spec.a, t, threads, Boolean(fit.m), Boolean(fit.k))}
    ${stageTile('B', spec.b, t, threads, Boolean(fit.n), Boolean(fit.k))}
    workgroupBarrier();
    for (var kk = 0u; kk < ${t.tk}u; kk++) {
      ${step.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${store.join('\n  ')}
}`;
}

// ---------------------------------------------------------------- matmul

/** Tile classes; matmulTile() picks one per shape and adapter. */
export const GEMM_TILES = {
  /** big products: 256 invocations of 8x8 outputs, 8 KiB of workgroup memory */
  large: { tm: 128, tn: 128, tk: 8, rm: 8, rn: 8 },
  /** GPUs, the default: 256 invocations of 4x4 */
  medium: { tm: 64, tn: 64, tk: 16, rm: 4, rn: 4 },
  /** few rows (a classifier head on a small batch): more workgroups along N */
  shortM: { tm: 8, tn: 128, tk: 16, rm: 4, rn: 4 },
  /** few columns */
  shortN: { tm: 128, tn: 8, tk: 16, rm: 4, rn: 4 },
  // CPU adapters (lavapipe, SwiftShader) run a workgroup's invocations as SIMD lanes, so a
  // workgroup-memory load whose address differs between lanes is a gather: 8x8 outputs per
  // invocation halve the gathers per FMA of 4x4 (lavapipe, 512^3: 3.4-3.9 against 1.9 GFLOP per
  // CPU-second). 16x16 is faster still (5-6) but takes lavapipe 7-36 s to compile instead of
  // 1.5-3.5 s; 16x8 sits between (4.3 at 1024^3, 2.5-8 s), for big products only. A tile no
  // larger than the matrix wastes no lanes on a partial tile.
  cpuLarge: { tm: 128, tn: 128, tk: 8, rm: 16, rn: 8 },
  // few rows (a convolution's 16-32 output channels): 64-row tiles would leave half or more idle
  cpuM32: { tm: 32, tn: 128, tk: 8, rm: 8, rn: 8 },
  cpuM64: { tm: 64, tn: 128, tk: 8, rm: 8, rn: 8 },
  cpuN64: { tm: 128, tn: 64, tk: 8, rm: 8, rn: 8 },
  cpu64: { tm: 64, tn: 64, tk: 8, rm: 8, rn: 8 },
} as const satisfies Record<string, GemmTile>;

/** Chooses a tile class for an M x N x K product repeated `batch` times. */
export function matmulTile(M: number, N: number, _K: number, batch: number): GemmTile {
  const T = GEMM_TILES;
  if (M <= 8 && N > 8) return T.shortM;
  if (N <= 8 && M > 8) return T.shortN;
  if (device().info.isFallbackAdapter) {
    if (M <= 32 && N > 64) return T.cpuM32;
    if (M <= 64) return N <= 64 ? T.cpu64 : T.cpuM64;
    return N <= 64 ? T.cpuN64 : M >= 512 && N >= 512 ? T.cpuLarge : T.large;
  }
  // large tiles once there are enough of them to fill a big GPU
  return (M * N * batch) / (128 * 128) >= 256 ? T.large : T.medium;
}

export interface MatmulOptions {
  /** a is [..., K, M] */
  transA?: boolean;
  /** b is [..., N, K] */
  transB?: boolean;
  /** scales the product */
  alpha?: number;
  /** [N], added to every row */
  bias?: Tensor;
  /** written in place (its shape must be the result's); needed by accumulate */
  out?: Tensor;
  /** out += alpha * a @ b (+ bias) */
  accumulate?: boolean;
  /** overrides the tile class (tuning and tests) */
  tile?: GemmTile;
}

interface BatchLayout {
  shape: number[];
  /** batch shape collapsed: size-1 dims dropped, dims walked contiguously by both operands merged */
  dims: number[];
  strideA: number[];
  strideB: number[];
  count: number;
}

function batchLayout(a: Tensor, b: Tensor, matA: number, matB: number): BatchLayout {
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = ba[ba.length - rank + i] ?? 1;
    const db = bb[bb.length - rank + i] ?? 1;
    check(da === db || da === 1 || db === 1, 'matmul', () => `batch dimensions of ${fmtShape(a.shape)} and ${fmtShape(b.shape)} do not broadcast`);
    shape.push(da === 1 ? db : da);
  }
  const sa = broadcastStrides(ba, shape).map((s) => s * matA);
  const sb = broadcastStrides(bb, shape).map((s) => s * matB);
  const { shape: dims, strides: [strideA, strideB] } = mergeDims(shape, [sa, sb]);
  return { shape, dims, strideA, strideB, count: shapeSize(shape) };
}

/** Element offsets of batch `i` in A and B (row-major over the collapsed batch dims). */
function batchOffsets(l: BatchLayout, i: number): [number, number] {
  let offA = 0, offB = 0;
  for (let d = l.dims.length - 1; d >= 0; d--) {
    const c = i % l.dims[d];
    i = Math.floor(i / l.dims[d]);
    offA += c * l.strideA[d];
    offB += c * l.strideB[d];
  }
  return [offA, offB];
}

const matmulCode = new Map<string, string>();

/** The uniforms and buffers of every matmul kernel (a, b, bias?, y; vec4 or f32 elements). */
function matmulBindings(vecA: boolean, vecB: boolean, vecC: boolean, bias: boolean): string {
  const arr = (vec: boolean): string => (vec ? 'vec4<f32>' : 'f32');
  const V = 'array<vec4<u32>, 2>';
  return kernelBindings({
    uniforms: { M: 'u32', N: 'u32', K: 'u32', nb: 'u32', alpha: 'f32', dims: V, sa: V, sb: V },
    read: { a: arr(vecA), b: arr(vecB), ...(bias ? { bias: arr(vecC) } : {}) },
    write: { y: arr(vecC) },
  });
}

/** The WGSL of one matmul specialisation (a gemmWGSL spec over strided, batched operands). */
function matmulWGSL(
  tile: GemmTile, transA: boolean, transB: boolean, vecA: boolean, vecB: boolean, vecC: boolean,
  fit: { m: boolean; n: boolean; k: boolean }, bias: boolean, accumulate: boolean,
): string {
  const idxA = transA ? 'mm_offA + k * p.M + m' : 'mm_offA + m * p.K + k';
  const idxB = transB ? 'mm_offB + n * p.K + k' : 'mm_offB + k * p.N + n';
  const epilogue = (i: string, bn: string): string => `p.alpha * v${bias ? ` + bias[${bn}]` : ''}${accumulate ? ` + y[${i}]` : ''}`;
  return gemmWGSL({
    tile,
    decls: `${matmulBindings(vecA, vecB, vecC, bias)}
var<private> mm_offA: u32;
var<private> mm_offB: u32;
var<private> mm_offC: u32;`,
    M: 'p.M',
    N: 'p.N',
    K: 'p.K',
    prologue: BATCH_OFFSETS_WGSL,
    a: { contiguous: transA ? 'm' : 'k', vec4: vecA, read: vecA ? `return a[(${idxA}) / 4u];` : `return a[${idxA}];` },
    b: { contiguous: transB ? 'k' : 'n', vec4: vecB, read: vecB ? `return b[(${idxB}) / 4u];` : `return b[${idxB}];` },
    out: {
      vec4: vecC,
      write: vecC ? `let i = (mm_offC + m * p.N + n) / 4u; y[i] = ${epilogue('i', 'n / 4u')};` : `let i = mm_offC + m * p.N + n; y[i] = ${epilogue('i', 'n')};`,
    },
    fit,
  });
}

/**
 * Batched matrix product C = alpha * op(A) · op(B) (+ bias) (+ C when accumulating), f32.
 * a: [..., M, K] ([..., K, M] with transA); b: [..., K, N] ([..., N, K] with transB); the batch
 * dims broadcast like NumPy (a rank-2 operand is shared by every batch). Result: [...batch, M, N].
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const { transA = false, transB = false, alpha = 1, bias, accumulate = false } = opts;
  const shapes = (): string => `${fmtShape(a.shape)}${transA ? 'ᵀ' : ''} and ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}`;
  check(a.dtype === 'f32' && b.dtype === 'f32', 'matmul', () => `needs f32 tensors, got ${a.dtype} ${fmtShape(a.shape)} and ${b.dtype} ${fmtShape(b.shape)}`);
  check(a.rank >= 2 && b.rank >= 2, 'matmul', () => `needs tensors of rank >= 2, got ${shapes()}`);
  check(a.device === b.device, 'matmul', () => `inputs live on different backends (${a.device}, ${b.device})`);
  const [M, Ka] = transA ? [a.shape[a.rank - 1], a.shape[a.rank - 2]] : [a.shape[a.rank - 2], a.shape[a.rank - 1]];
  const [Kb, N] = transB ? [b.shape[b.rank - 1], b.shape[b.rank - 2]] : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  check(Ka === Kb, 'matmul', () => `inner dimensions differ (${Ka} vs ${Kb}) for ${shapes()}`);
  const K = Ka;
  const layout = batchLayout(a, b, M * K, K * N);
  check(layout.dims.length <= 8, 'matmul', () => `more than 8 non-trivial batch dimensions in ${shapes()}`);
  const outShape = [...layout.shape, M, N];
  if (bias) {
    check(bias.dtype === 'f32' && bias.rank === 1 && bias.shape[0] === N, 'matmul', () => `bias must be f32 [${N}], got ${bias.dtype} ${fmtShape(bias.shape)}`);
    check(bias.device === a.device, 'matmul', 'bias lives on another backend');
  }
  check(!accumulate || opts.out, 'matmul', 'accumulate needs `out`');
  let out: Tensor;
  if (opts.out) {
    out = opts.out;
    check(out.dtype === 'f32' && out.shape.join() === outShape.join(), 'matmul', () => `out must be f32 ${fmtShape(outShape)} for ${shapes()}, got ${out.dtype} ${fmtShape(out.shape)}`);
    check(out.device === a.device, 'matmul', 'out lives on another backend');
    const same = (x: Tensor): boolean => (x.device === 'cpu' ? x.cpu === out.cpu : x.buffer === out.buffer);
    check(!same(a) && !same(b), 'matmul', 'out must not share storage with a or b');
  } else {
    out = Tensor.empty(outShape, 'f32', a.device, 'matmul');
  }
  if (out.size === 0) return out;

  if (a.device === 'cpu') {
    // float64 reference: C[m, n] = alpha * sum_k A[m, k] B[k, n] (+ bias[n]) (+ C[m, n])
    const A = a.cpu, B = b.cpu, C = out.cpu, bv = bias?.cpu;
    const [am, ak] = transA ? [1, M] : [K, 1];
    const [bk, bn] = transB ? [1, K] : [N, 1];
    for (let i = 0; i < layout.count; i++) {
      const [offA, offB] = batchOffsets(layout, i);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += A[offA + m * am + k * ak] * B[offB + k * bk + n * bn];
          const o = (i * M + m) * N + n;
          C[o] = alpha * s + (bv ? bv[n] : 0) + (accumulate ? C[o] : 0);
        }
      }
    }
    return out;
  }

  check(layout.count <= device().limits.maxComputeWorkgroupsPerDimension, 'matmul', () => `${layout.count} batches exceed the dispatch limit for ${shapes()}`);
  const buffers: Record<string, Bound> = { a: a.binding(), b: b.binding(), y: out.binding() };
  if (bias) buffers.bias = bias.binding();
  const uniforms = { M, N, K, nb: layout.dims.length, alpha, dims: pad8(layout.dims), sa: pad8(layout.strideA), sb: pad8(layout.strideB) };
  const sg = opts.tile ? 0 : subgroupGemmSize();
  if (sg) {
    const t = subgroupGemmTile(sg, M, N);
    const l = {
      transA, transB, vecA: K > 0 && (transA ? M % 4 === 0 && t.lr === 4 : K % 4 === 0), vecB: K > 0 && (transB ? K % 4 === 0 : N % 4 === 0),
      vecC: N % 4 === 0, fitK: K % 4 === 0, bias: Boolean(bias), accumulate,
    };
    const key = `sg${t.sg}x${t.lr}x${t.wg}|${Object.values(l).map(Number).join('')}`;
    let code = matmulCode.get(key);
    if (code === undefined) matmulCode.set(key, (code = subgroupGemmWGSL(t, l, matmulBindings(l.vecA, l.vecB, l.vecC, l.bias))));
    runtime().dispatch(runtime().kernel('matmul.subgroup', code), buffers, uniforms, subgroupGemmGrid(t, M, N, layout.count));
    return out;
  }
  const tile = opts.tile ?? matmulTile(M, N, K, layout.count);
  const vecA = K > 0 && (transA ? M % 4 === 0 : K % 4 === 0);
  const vecB = K > 0 && (transB ? K % 4 === 0 : N % 4 === 0);
  const vecC = N % 4 === 0;
  // a CPU adapter (SwiftShader) takes about a second to compile any GEMM, far more than the bounds
  // checks a fitting size saves at run time: there the checked code serves every size, which cuts a
  // tiny Mask R-CNN step's GEMMs from 36 to 23. A forced tile (tuning, tests) gets its exact code.
  const exact = !device().info.isFallbackAdapter || opts.tile !== undefined;
  const fit = { m: exact && M % tile.tm === 0, n: exact && N % tile.tn === 0, k: exact && K % tile.tk === 0 };
  const flags = (...f: boolean[]): string => f.map(Number).join('');
  // the code is memoised on every input of its generator (building it costs more than a dispatch)
  const key = `${tile.tm}x${tile.tn}x${tile.tk}/${tile.rm}x${tile.rn}|t${flags(transA, transB)}|v${flags(vecA, vecB, vecC)}|f${flags(fit.m, fit.n, fit.k)}|e${flags(Boolean(bias), accumulate)}`;
  let code = matmulCode.get(key);
  if (code === undefined) matmulCode.set(key, (code = matmulWGSL(tile, transA, transB, vecA, vecB, vecC, fit, Boolean(bias), accumulate)));
  const k = runtime().kernel('matmul.gemm', code);
  runtime().dispatch(k, buffers, uniforms, gemmGrid(tile, M, N, layout.count));
  return out;
}
