// A register-tiled GEMM for CPU adapters (lavapipe) that shares A across a subgroup instead of
// staging tiles in workgroup memory. kernels/matmul.ts picks it (subgroupGemmFits) and launches it
// with the uniforms of its own batched kernel.
//
// Why: lavapipe runs a subgroup as the SIMD lanes of one CPU thread. A workgroup-memory load whose
// address differs per lane is a gather, and a barrier splits the shader into coroutines, which is
// why the classic tiled GEMM stops at 3.5-4.6 GFLOP/s there. Here each invocation owns 4 adjacent
// columns of C and all TR = SG·LR rows of the workgroup's tile (TR vec4 accumulators); per step of
// 4 along K, lane l of the subgroup loads the 4x4 (LR x 4) block of A for rows l·LR.. and every
// lane gets the others' values with subgroupBroadcast (a register shuffle), while each lane loads
// its own 4x4 block of B. No workgroup memory, no barrier: ~13 GFLOP/s at 512³ on 2 cores against
// ~4 for the tiled kernel. The workgroup is 1-D, WG lanes along N (WG a multiple of SG).
//
// Bounds: row and column indices are clamped into the matrix once, before the K loop, so the loop
// loads without checks (rows and columns past the edge compute values that are never stored); the
// K remainder (K % 4) runs a guarded scalar step. Every lane runs the whole loop (subgroupBroadcast
// needs uniform control flow); stores check m < M (uniform) and n < N.

import { device } from './device.js';

/** The shape of one specialisation. */
export interface SubgroupGemmTile {
  /** subgroup size the code is written for (the adapter's fixed size) */
  sg: number;
  /** A rows each lane loads: the tile has sg · lr rows */
  lr: number;
  /** invocations per workgroup (a multiple of sg): the tile has 4 · wg columns */
  wg: number;
}

/** WGSL of matmul's batch prologue: the element offsets mm_offA, mm_offB, mm_offC of batch `batch`. */
export const BATCH_OFFSETS_WGSL = /* wgsl */ `
  var r = batch;
  for (var d = i32(p.nb) - 1; d >= 0; d--) {
    let e = u32(d);
    let s = p.dims[e / 4u][e % 4u];
    let c = r % s;
    r = r / s;
    mm_offA += c * p.sa[e / 4u][e % 4u];
    mm_offB += c * p.sb[e / 4u][e % 4u];
  }
  mm_offC = batch * p.M * p.N;`;

/**
 * The fixed subgroup size of Mesa's llvmpipe (lavapipe) with the 'subgroups' feature, or 0 where this
 * kernel does not apply: GPUs keep the tiled kernel (their subgroups are 32-64 wide and workgroup
 * memory is fast), and so does Chromium's SwiftShader, a fallback adapter with fixed subgroups too,
 * where the unrolled register tile compiles for minutes.
 */
export function subgroupGemmSize(): number {
  const d = device();
  if (!d.info.isFallbackAdapter || !d.has('subgroups') || !/llvmpipe/i.test(d.info.description)) return 0;
  const info = d.adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const sg = info.subgroupMinSize ?? 0;
  return sg === info.subgroupMaxSize && (sg === 4 || sg === 8 || sg === 16) ? sg : 0;
}

/** The tile for an M x N product on subgroups of `sg`: fewer rows for short M, fewer lanes for short N. */
export function subgroupGemmTile(sg: number, M: number, N: number): SubgroupGemmTile {
  const lr = M <= 2 * sg ? 2 : 4;
  // 16 lanes (64 columns) when N is small (an 8x8 feature map), else 64 lanes
  const wg = Math.max(sg, N <= 64 ? 16 : 64);
  return { sg, lr, wg };
}

export function subgroupGemmGrid(t: SubgroupGemmTile, M: number, N: number, batch: number): [number, number, number] {
  return [Math.ceil(N / (4 * t.wg)), Math.ceil(M / (t.sg * t.lr)), batch];
}

export interface SubgroupGemmLayout {
  transA: boolean;
  transB: boolean;
  /** vec4 loads of A along its contiguous axis (K % 4 == 0, or M % 4 == 0 and lr == 4 with transA) */
  vecA: boolean;
  vecB: boolean;
  /** vec4 stores (N % 4 == 0) */
  vecC: boolean;
  /** K % 4 == 0: no remainder step */
  fitK: boolean;
  bias: boolean;
  accumulate: boolean;
}

/**
 * The WGSL of C[batch] = alpha · op(A) · op(B) (+ bias) (+ C), with matmul's bindings and uniforms
 * (M N K nb alpha dims sa sb; a, b, bias?, y).
 */
export function subgroupGemmWGSL(t: SubgroupGemmTile, l: SubgroupGemmLayout, bindings: string): string {
  const { sg, lr, wg } = t;
  const TR = sg * lr;
  const vecA = l.vecA;
  if (vecA && l.transA && lr !== 4) throw new Error('subgroupGemmWGSL: vec4 loads of a transposed A hold one lane\'s rows, so they need lr = 4');
  const pre: string[] = [];
  // per-lane bases, clamped into the matrix (elements)
  for (let q = 0; q < lr; q++) {
    const row = `min(m0 + sid * ${lr}u + ${q}u, p.M - 1u)`;
    if (!l.transA) pre.push(`let rowA${q} = mm_offA + ${row} * p.K;`);
    else if (!vecA) pre.push(`let colA${q} = mm_offA + ${row};`);
  }
  if (vecA && l.transA) pre.push(`let colA = mm_offA + min(m0 + sid * 4u, p.M - 4u);`);
  for (let c = 0; c < 4; c++) {
    const col = `min(n + ${c}u, p.N - 1u)`;
    if (l.transB) pre.push(`let rowB${c} = mm_offB + ${col} * p.K;`);
    else if (!l.vecB) pre.push(`let colB${c} = mm_offB + ${col};`);
  }
  if (l.vecB && !l.transB) pre.push(`let colB = mm_offB + min(n, p.N - 4u);`);

  // one block of 4 along K: A as aJ (vec4 over this lane's rows at k + j) built from its loads
  const blockA: string[] = [];
  if (!l.transA) {
    for (let q = 0; q < lr; q++) {
      blockA.push(vecA ? `let ar${q} = a[(rowA${q} + k) / 4u];` : `let ar${q} = vec4<f32>(${[0, 1, 2, 3].map((j) => `a[rowA${q} + k + ${j}u]`).join(', ')});`);
    }
  } else {
    for (let j = 0; j < 4; j++) {
      blockA.push(vecA ? `let at${j} = a[(colA + (k + ${j}u) * p.M) / 4u];` : `let at${j} = vec${lr}<f32>(${[...Array(lr).keys()].map((q) => `a[colA${q} + (k + ${j}u) * p.M]`).join(', ')});`);
    }
  }
  const aElem = (q: number, j: number): string => (l.transA ? `at${j}[${q}]` : `ar${q}[${j}]`);
  // B as bJ = B[k + j, n..n+3]
  const blockB: string[] = [];
  if (l.transB) {
    for (let c = 0; c < 4; c++) {
      blockB.push(l.vecB ? `let bt${c} = b[(rowB${c} + k) / 4u];` : `let bt${c} = vec4<f32>(${[0, 1, 2, 3].map((j) => `b[rowB${c} + k + ${j}u]`).join(', ')});`);
    }
    for (let j = 0; j < 4; j++) blockB.push(`let b${j} = vec4<f32>(bt0[${j}], bt1[${j}], bt2[${j}], bt3[${j}]);`);
  } else {
    for (let j = 0; j < 4; j++) {
      blockB.push(l.vecB ? `let b${j} = b[(colB + (k + ${j}u) * p.N) / 4u];` : `let b${j} = vec4<f32>(${[0, 1, 2, 3].map((c) => `b[colB${c} + (k + ${j}u) * p.N]`).join(', ')});`);
    }
  }
  const fmas = (js: number[], a: (q: number, j: number) => string, b: (j: number) => string): string[] => {
    const out: string[] = [];
    for (const j of js) {
      for (let s = 0; s < sg; s++) {
        for (let q = 0; q < lr; q++) out.push(`c${s * lr + q} = fma(vec4<f32>(subgroupBroadcast(${a(q, j)}, ${s}u)), ${b(j)}, c${s * lr + q});`);
      }
    }
    return out;
  };
  const body = [...blockA, ...blockB, ...fmas([0, 1, 2, 3], aElem, (j) => `b${j}`)];

  // the K remainder, one k at a time, scalar loads
  let tail = '';
  if (!l.fitK) {
    // element e of a vec4 binding is component e % 4 of vec4 e / 4
    const ld = (buf: string, vec: boolean, e: string): string => (vec ? `${buf}[(${e}) / 4u][(${e}) % 4u]` : `${buf}[${e}]`);
    const scalarA = (q: number): string => ld('a', vecA, l.transA ? `${vecA ? `colA + ${q}u` : `colA${q}`} + k * p.M` : `rowA${q} + k`);
    const scalarB = (c: number): string => ld('b', l.vecB, l.transB ? `rowB${c} + k` : `${l.vecB ? `colB + ${c}u` : `colB${c}`} + k * p.N`);
    const av = [...Array(lr).keys()].map((q) => `let as${q} = ${scalarA(q)};`);
    const bv = `let bs = vec4<f32>(${[0, 1, 2, 3].map(scalarB).join(', ')});`;
    tail = `for (var k = kb; k < p.K; k++) {
    ${av.join(' ')} ${bv}
    ${fmas([0], (q) => `as${q}`, () => 'bs').join('\n    ')}
  }`;
  }

  const epi = (i: string, bn: string, v: string): string => `p.alpha * ${v}${l.bias ? ` + bias[${bn}]` : ''}${l.accumulate ? ` + y[${i}]` : ''}`;
  const store: string[] = [];
  for (let r = 0; r < TR; r++) {
    const row = `m0 + ${r}u`;
    const put = l.vecC
      ? `let i = (mm_offC + (${row}) * p.N + n) / 4u; y[i] = ${epi('i', 'n / 4u', `c${r}`)};`
      : [0, 1, 2, 3].map((c) => `if (n + ${c}u < p.N) { let i = mm_offC + (${row}) * p.N + n + ${c}u; y[i] = ${epi('i', `n + ${c}u`, `c${r}[${c}]`)}; }`).join(' ');
    store.push(`if (${row} < p.M) { ${put} }`);
  }
  return /* wgsl */ `enable subgroups;
${bindings}
var<private> mm_offA: u32;
var<private> mm_offB: u32;
var<private> mm_offC: u32;

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sid: u32) {
  let batch = wid.z;
  ${BATCH_OFFSETS_WGSL}
  let m0 = wid.y * ${TR}u;
  let n = (wid.x * ${wg}u + li) * 4u;
  ${pre.join('\n  ')}
  ${[...Array(TR).keys()].map((r) => `var c${r} = vec4<f32>();`).join(' ')}
  let kb = p.K & ~3u;
  for (var k = 0u; k < kb; k += 4u) {
    ${body.join('\n    ')}
  }
  ${tail}
  if (n < p.N) {
    ${store.join('\n    ')}
  }
}`;
}
