// 2-D convolution (NCHW, f32; PyTorch's cross-correlation with stride, padding, dilation, groups)
// as implicit GEMMs on the matmul tile generator (kernels/matmul.ts, gemmWGSL): forward, input
// gradient (dgrad) and weight gradient (wgrad), each with its float64 CPU reference.
//
// x [N, C, H, W], w [Co, C/G, KH, KW], y [N, Co, OH, OW]; per group g (Cig = C/G, Cog = Co/G):
//   forward  Y_g  (Cog x N·OH·OW)    = W_g (Cog x Cig·KH·KW)  · im2col(X_g) (Cig·KH·KW x N·OH·OW)
//   dgrad    dX_g (Cig x N·H·W)      = W_gᵀ (Cig x Cog·KH·KW) · gather(dY_g) (Cog·KH·KW x N·H·W)
//   wgrad    dW_g (Cog x Cig·KH·KW)  = dY_g (Cog x N·OH·OW)   · im2col(X_g)ᵀ (N·OH·OW x Cig·KH·KW)
// The operand loaders compute the im2col element on the fly (0 in the padding), so nothing is
// materialised. dgrad is the gather form of the transposed convolution: element (co, r, c; n, h, w)
// is dY[n, co, (h + p − r·d) / s, (w + p − c·d) / s] when that divides exactly and lies inside dY,
// else 0; each dX element is written once (deterministic, no atomics). With stride s > 1 only the
// taps r ≡ r₀ (mod s/gcd(s, d)) reach the rows h ≡ a (mod s), so dgrad runs one GEMM per phase
// (a, b) of the s_h x s_w phases with just those taps: K shrinks by about s² (no multiplies by the
// zeros a strided dY would interleave). wgrad splits its long K
// (N·OH·OW) into chunks that write separate partial sums, then sums them in a fixed order.
// A 1x1 convolution with stride 1 and no padding is a plain batched matmul in all three passes:
// its loaders index the tensors directly (one GEMM per image and group; wgrad walks K = N·H·W).
// All sizes (and whether there is a bias) are uniforms, so a whole network compiles a handful of
// pipelines (pass x tiling x vec4 layout).

import { check, checkF32, checkInputs, fmtShape } from './errors.js';
import { GEMM_TILES, gemmGrid, gemmWGSL, matmulTile, type GemmTile } from './matmul.js';
import { runtime, type Bound } from './runtime.js';
import { kernelBindings } from './wgsl.js';
import { pairOf, type Pair } from './dims.js';
import { explicitChunk, explicitForward, explicitInputGrad, explicitWeightGrad } from './conv-explicit.js';
import { device } from './device.js';
import { sum } from './reduce.js';
import { Tensor, type Shape } from './tensor.js';

export type Conv2dPair = Pair;

export interface ConvOptions {
  stride?: Conv2dPair;
  padding?: Conv2dPair;
  dilation?: Conv2dPair;
  groups?: number;
}

/** A convolution's sizes, resolved and validated. */
export interface ConvGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  Co: number;
  OH: number;
  OW: number;
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
  /** input channels per group */
  Cig: number;
  /** output channels per group */
  Cog: number;
}

/** Largest quotient the kernels' f32-reciprocal division computes exactly (its error q·3·2⁻²⁴ stays below 1). */
const DIVMOD_MAX_QUOTIENT = 2 ** 22;

/** PyTorch's output size: ⌊(in + 2p − d·(k − 1) − 1) / s⌋ + 1. */
export const convOutputSize = (inSize: number, k: number, s: number, p: number, d: number): number => Math.floor((inSize + 2 * p - d * (k - 1) - 1) / s) + 1;

/** Resolves and checks the geometry of a convolution of an input `xShape` with a weight `wShape`. */
export function conv2dGeometry(op: string, xShape: Shape, wShape: Shape, opts: ConvOptions = {}): ConvGeometry {
  const shapes = (): string => `input ${fmtShape(xShape)}, weight ${fmtShape(wShape)}`;
  check(xShape.length === 4, op, () => `expects an input [N, C, H, W], got ${shapes()}`);
  check(wShape.length === 4, op, () => `expects a weight [C_out, C_in/groups, KH, KW], got ${shapes()}`);
  const stride = pairOf(opts.stride ?? 1), padding = pairOf(opts.padding ?? 0), dilation = pairOf(opts.dilation ?? 1);
  const groups = opts.groups ?? 1;
  check([...stride, ...padding, ...dilation, groups].every(Number.isInteger), op, () => `stride, padding, dilation and groups must be integers, got s=${stride} p=${padding} d=${dilation} groups=${groups}`);
  check(stride[0] > 0 && stride[1] > 0 && dilation[0] > 0 && dilation[1] > 0 && padding[0] >= 0 && padding[1] >= 0, op,
    () => `stride and dilation must be positive and padding non-negative, got s=${stride} p=${padding} d=${dilation}`);
  const [N, C, H, W] = xShape;
  const [Co, Cig, KH, KW] = wShape;
  check(groups > 0 && C % groups === 0 && Co % groups === 0, op, () => `groups (${groups}) must divide the input channels (${C}) and the output channels (${Co}); ${shapes()}`);
  check(Cig === C / groups, op, () => `weight expects ${Cig * groups} input channels (${Cig} per group x ${groups} groups), input has ${C}; ${shapes()}`);
  check(Co > 0 && KH > 0 && KW > 0, op, () => `empty weight: ${shapes()}`);
  const effective = [(KH - 1) * dilation[0] + 1, (KW - 1) * dilation[1] + 1];
  check(effective[0] <= H + 2 * padding[0] && effective[1] <= W + 2 * padding[1], op,
    () => `kernel ${KH}x${KW} (dilation ${fmtShape(dilation)}, effective ${effective[0]}x${effective[1]}) is larger than the padded input ${H + 2 * padding[0]}x${W + 2 * padding[1]}; ${shapes()}`);
  check(Math.max(N, C, Co, H + 2 * padding[0], W + 2 * padding[1]) < DIVMOD_MAX_QUOTIENT, op, () => `sizes beyond ${DIVMOD_MAX_QUOTIENT} are not supported: ${shapes()}`);
  const OH = convOutputSize(H, KH, stride[0], padding[0], dilation[0]);
  const OW = convOutputSize(W, KW, stride[1], padding[1], dilation[1]);
  return { N, C, H, W, Co, OH, OW, kernel: [KH, KW], stride, padding, dilation, groups, Cig, Cog: Co / groups };
}

export const outShapeOf = (g: ConvGeometry): number[] => [g.N, g.Co, g.OH, g.OW];

/** 1x1, stride 1, no padding: the convolution is a plain matmul per image and group. */
export const isPointwise = (g: ConvGeometry): boolean => g.kernel[0] === 1 && g.kernel[1] === 1 && g.stride[0] === 1 && g.stride[1] === 1 && g.padding[0] === 0 && g.padding[1] === 0;

// ---------------------------------------------------------------- CPU references (float64, direct loops)

/** Calls f(xIndex, wIndex, yIndex) for every multiply-add of the convolution. */
function forEachTap(g: ConvGeometry, f: (xi: number, wi: number, yi: number) => void): void {
  const [KH, KW] = g.kernel, [sh, sw] = g.stride, [ph, pw] = g.padding, [dh, dw] = g.dilation;
  for (let n = 0; n < g.N; n++) {
    for (let co = 0; co < g.Co; co++) {
      const c0 = Math.floor(co / g.Cog) * g.Cig;
      for (let oh = 0; oh < g.OH; oh++) {
        for (let ow = 0; ow < g.OW; ow++) {
          const yi = ((n * g.Co + co) * g.OH + oh) * g.OW + ow;
          for (let ci = 0; ci < g.Cig; ci++) {
            for (let r = 0; r < KH; r++) {
              const ih = oh * sh - ph + r * dh;
              if (ih < 0 || ih >= g.H) continue;
              for (let c = 0; c < KW; c++) {
                const iw = ow * sw - pw + c * dw;
                if (iw < 0 || iw >= g.W) continue;
                f(((n * g.C + c0 + ci) * g.H + ih) * g.W + iw, ((co * g.Cig + ci) * KH + r) * KW + c, yi);
              }
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------- WGSL

type Pass = 'forward' | 'dgrad' | 'wgrad';

// Every size is a uniform, so one pipeline serves all layers with the same pass, tiling and vec4
// layout. Divisions by sizes use f32 reciprocals (cv_divmod), which vectorise where u32 division
// does not (lavapipe) and are cheaper on GPUs.
const UNIFORMS: Record<string, string> = Object.fromEntries([
  ...'C H W Co OH OW hw ohw G Cig Cog KW KHW SH SW'.split(' ').map((n) => [n, 'u32']),
  ...'PH PW DH DW'.split(' ').map((n) => [n, 'i32']),
  ...'gm gn gk nBase kChunk hasBias'.split(' ').map((n) => [n, 'u32']),
  ...'invOHW invOW invHW invW invKHW invKW'.split(' ').map((n) => [n, 'f32']),
  ...'pa pb Wp phw ntw taps r0 c0 Th Tw Eh Ew'.split(' ').map((n) => [n, 'u32']),
  ...'qa qb'.split(' ').map((n) => [n, 'i32']),
  ...'invWp invPhw invNtw invTaps'.split(' ').map((n) => [n, 'f32']),
]);

export const DIVMOD_WGSL = /* wgsl */ `
// (n / d, n % d) from q ≈ n · (1/d) in f32, corrected by one step: exact for quotients below 2^22
fn cv_divmod(n: u32, d: u32, inv: f32) -> vec2<u32> {
  let q0 = u32(f32(n) * inv);
  let r0 = i32(n) - i32(q0 * d);
  let q = u32(i32(q0) + select(0, -1, r0 < 0) + select(0, 1, r0 >= i32(d)));
  return vec2<u32>(q, n - q * d);
}`;

/** Which operands are read/written as vec4, and the GEMM extents, for one pass. */
interface PassPlan {
  pass: Pass;
  pointwise: boolean;
  M: number;
  N: number;
  K: number;
  /** wid.z extent: groups (im2col), images x groups (pointwise), splits x groups (wgrad) */
  batches: number;
  vecA: boolean;
  vecB: boolean;
  vecC: boolean;
}

// WGSL snippets. IM2COL: input pixel (ih, iw) of output pixel `pix` (of OH x OW) through tap `tap`
// (of KH x KW); READ_X: x at that pixel of channel `ch` of image `img`, 0 in the padding.
const IM2COL = (pix: string, tap: string): string => /* wgsl */ `let o2 = cv_divmod(${pix}, p.OW, p.invOW); let t2 = cv_divmod(${tap}, p.KW, p.invKW);
  let ih = i32(o2.x * p.SH + t2.x * u32(p.DH)) - p.PH;
  let iw = i32(o2.y * p.SW + t2.y * u32(p.DW)) - p.PW;`;
const READ_X = (ch: string): string => /* wgsl */ `if (u32(ih) >= p.H || u32(iw) >= p.W) { return 0.0; }
  return x[((img * p.C + ${ch}) * p.H + u32(ih)) * p.W + u32(iw)];`;

/** The WGSL of one pass: a GemmSpec whose loaders and epilogue index the convolution's tensors. */
function passWGSL(pl: PassPlan, tile: GemmTile): string {
  const elem = (vec: boolean): string => (vec ? 'vec4<f32>' : 'f32');
  const ld = (buf: string, vec: boolean, idx: string): string => (vec ? `return ${buf}[(${idx}) / 4u];` : `return ${buf}[${idx}];`);
  const buffers: [string, boolean, boolean][] = []; // name, vec4, writable
  let prologue: string;
  let readA: string, readB: string, write: string;
  let contigA: 'm' | 'k', contigB: 'k' | 'n';
  const storeC = (name: string, idx: string, extra = ''): string =>
    pl.vecC ? `${name}[(${idx}) / 4u] = v${extra ? ` + vec4<f32>(${extra})` : ''};` : `${name}[${idx}] = v${extra ? ` + ${extra}` : ''};`;
  // in B and the epilogue, `col` is the column of the whole GEMM (N may be split over dispatches)
  if (pl.pass === 'forward') {
    // without a bias, `w` is bound in its place (any buffer of >= Co floats) and p.hasBias is 0
    buffers.push(['x', pl.pointwise && pl.vecB, false], ['w', pl.vecA, false], ['bias', false, false], ['y', pl.vecC, true]);
    contigA = 'k';
    contigB = 'n';
    readA = ld('w', pl.vecA, '(cv_g * p.Cog + m) * p.gk + k');
    const co = 'cv_g * p.Cog + m';
    const biasTerm = `select(0.0, bias[${co}], p.hasBias != 0u)`;
    if (pl.pointwise) {
      prologue = 'cv_img = batch / p.G; cv_g = batch % p.G;';
      readB = ld('x', pl.vecB, '(cv_img * p.C + cv_g * p.Cig + k) * p.hw + col');
      write = storeC('y', `(cv_img * p.Co + ${co}) * p.hw + col`, biasTerm);
    } else {
      prologue = 'cv_g = batch;';
      readB = /* wgsl */ `let c2 = cv_divmod(col, p.ohw, p.invOHW); let img = c2.x;
  let k2 = cv_divmod(k, p.KHW, p.invKHW);
  ${IM2COL('c2.y', 'k2.y')}
  ${READ_X('cv_g * p.Cig + k2.x')}`;
      write = `let c2 = cv_divmod(col, p.ohw, p.invOHW);\n  ${storeC('y', `(c2.x * p.Co + ${co}) * p.ohw + c2.y`, biasTerm)}`;
    }
  } else if (pl.pass === 'dgrad') {
    buffers.push(['dy', pl.pointwise && pl.vecB, false], ['w', pl.vecA, false], ['dx', pl.vecC, true]);
    contigB = 'n';
    if (pl.pointwise) {
      prologue = 'cv_img = batch / p.G; cv_g = batch % p.G;';
      contigA = 'm';
      readA = ld('w', pl.vecA, '(cv_g * p.Cog + k) * p.Cig + m');
      readB = ld('dy', pl.vecB, '(cv_img * p.Co + cv_g * p.Cog + k) * p.hw + col');
      write = storeC('dx', '(cv_img * p.C + cv_g * p.Cig + m) * p.hw + col');
    } else {
      // one phase (pa, pb) of the output rows: h = pa + SH·i, w = pb + SW·j; taps r = r0 + Th·t,
      // c = c0 + Tw·u reach them, from dY row oh = i + qa − Eh·t (and column ow = j + qb − Ew·u)
      prologue = 'cv_g = batch;';
      contigA = 'k';
      const taps = 'let k2 = cv_divmod(k, p.taps, p.invTaps); let t2 = cv_divmod(k2.y, p.ntw, p.invNtw);';
      readA = `${taps}\n  return w[((cv_g * p.Cog + k2.x) * p.Cig + m) * p.KHW + (p.r0 + t2.x * p.Th) * p.KW + p.c0 + t2.y * p.Tw];`;
      readB = /* wgsl */ `let c2 = cv_divmod(col, p.phw, p.invPhw); let img = c2.x; let i2 = cv_divmod(c2.y, p.Wp, p.invWp);
  ${taps}
  let oh = i32(i2.x) + p.qa - i32(t2.x * p.Eh); let ow = i32(i2.y) + p.qb - i32(t2.y * p.Ew);
  if (u32(oh) >= p.OH || u32(ow) >= p.OW) { return 0.0; }
  return dy[((img * p.Co + cv_g * p.Cog + k2.x) * p.OH + u32(oh)) * p.OW + u32(ow)];`;
      // vec4 stores only with stride 1 (one phase: the columns are dX's own pixels, in order)
      write = pl.vecC
        ? `let c2 = cv_divmod(col, p.hw, p.invHW);\n  ${storeC('dx', '(c2.x * p.C + cv_g * p.Cig + m) * p.hw + c2.y')}`
        : `let c2 = cv_divmod(col, p.phw, p.invPhw); let i2 = cv_divmod(c2.y, p.Wp, p.invWp);
  dx[((c2.x * p.C + cv_g * p.Cig + m) * p.H + p.pa + i2.x * p.SH) * p.W + p.pb + i2.y * p.SW] = v;`;
    }
  } else {
    // wgrad: wid.z = split · G + group; split s sums K over [s·kChunk, (s+1)·kChunk)
    buffers.push(['dy', pl.vecA, false], ['x', pl.pointwise && pl.vecB, false], ['dw', pl.vecC, true]);
    prologue = 'cv_g = batch % p.G; cv_k0 = (batch / p.G) * p.kChunk;';
    contigA = 'k';
    contigB = 'k';
    const head = (vec: boolean): string =>
      `let kk = k + cv_k0; if (kk >= p.gk) { return ${vec ? 'vec4<f32>()' : '0.0'}; } let c2 = cv_divmod(kk, p.ohw, p.invOHW); let img = c2.x;`;
    readA = `${head(pl.vecA)}\n  ${ld('dy', pl.vecA, '(img * p.Co + cv_g * p.Cog + m) * p.ohw + c2.y')}`;
    if (pl.pointwise) readB = `${head(pl.vecB)}\n  ${ld('x', pl.vecB, '(img * p.C + cv_g * p.Cig + col) * p.hw + c2.y')}`;
    else {
      readB = /* wgsl */ `${head(false)}
  let n2 = cv_divmod(col, p.KHW, p.invKHW);
  ${IM2COL('c2.y', 'n2.y')}
  ${READ_X('cv_g * p.Cig + n2.x')}`;
    }
    write = storeC('dw', '((batch / p.G) * p.Co + cv_g * p.Cog + m) * p.Cig * p.KHW + col');
  }
  const decls = [
    kernelBindings({
      uniforms: UNIFORMS,
      read: Object.fromEntries(buffers.filter(([, , rw]) => !rw).map(([name, vec]) => [name, elem(vec)])),
      write: Object.fromEntries(buffers.filter(([, , rw]) => rw).map(([name, vec]) => [name, elem(vec)])),
    }),
    DIVMOD_WGSL,
    // per-workgroup coordinates set by the prologue: group, image (pointwise), first k (wgrad split)
    ...['cv_g', 'cv_img', 'cv_k0'].filter((v) => prologue.includes(`${v} =`)).map((v) => `var<private> ${v}: u32;`),
  ].join('\n');
  return gemmWGSL({
    tile,
    decls,
    M: 'p.gm',
    N: 'p.gn',
    K: pl.pass === 'wgrad' ? 'p.kChunk' : 'p.gk',
    prologue,
    a: { contiguous: contigA, vec4: pl.vecA, read: readA },
    b: { contiguous: contigB, vec4: pl.vecB, read: `let col = n + p.nBase;\n  ${readB}` },
    out: { vec4: pl.vecC, write: `let col = n + p.nBase;\n  ${write}` },
  });
}

/** Conv tilings besides matmul's: few rows (16 or 32 channels per group), and CPU-adapter ones. */
export const CONV_TILES = {
  m16: { tm: 16, tn: 128, tk: 16, rm: 4, rn: 4 },
  m32: { tm: 32, tn: 128, tk: 16, rm: 4, rn: 4 },
  // CPU adapters (lavapipe, SwiftShader): a pipeline takes seconds to compile there, growing with
  // the loads each invocation stages (its inlined im2col loaders), so these keep 4x4 outputs per
  // invocation and 128-256 invocations (~1.3 s to compile on lavapipe, against 9-20 s for 8x8 or
  // 16x16 register tiles), and match the tile's rows to the channels: measured on lavapipe,
  // 16 channels ran 2.2x faster on cpu16 than on cpu, 32 channels 1.8x on cpu32
  cpu16: { tm: 16, tn: 256, tk: 8, rm: 4, rn: 4 },
  cpu32: { tm: 32, tn: 128, tk: 8, rm: 4, rn: 4 },
  cpu: { tm: 64, tn: 64, tk: 8, rm: 4, rn: 4 },
} as const satisfies Record<string, GemmTile>;

/** The tiling for an M x N x K convolution GEMM repeated `batches` times. */
export function convTile(M: number, N: number, K: number, batches: number): GemmTile {
  if (device().info.isFallbackAdapter) return M <= 16 ? CONV_TILES.cpu16 : M <= 32 ? CONV_TILES.cpu32 : CONV_TILES.cpu;
  if (M <= 8) return GEMM_TILES.shortM;
  if (M <= 16) return CONV_TILES.m16;
  if (M <= 32) return CONV_TILES.m32;
  return matmulTile(M, N, K, batches);
}

/** wgrad keeps at least this many multiply-adds of K per split. */
const MIN_SPLIT_K = 512;
/** wgrad splits K until the grid has about this many workgroups. */
const TARGET_WORKGROUPS = 512;

interface Launch {
  /** every tensor the pass reads or writes, by its WGSL name */
  bound: Record<string, Tensor>;
  tuning: ConvTuning;
  hasBias?: boolean;
  /** dgrad's phase uniforms (unused by the other passes) */
  phase?: PhaseUniforms;
}

type PhaseUniforms = Record<'pa' | 'pb' | 'Wp' | 'phw' | 'ntw' | 'taps' | 'r0' | 'c0' | 'Th' | 'Tw' | 'Eh' | 'Ew' | 'qa' | 'qb' | 'invWp' | 'invPhw' | 'invNtw' | 'invTaps', number>;

const NO_PHASE: PhaseUniforms = { pa: 0, pb: 0, Wp: 1, phw: 1, ntw: 1, taps: 1, r0: 0, c0: 0, Th: 1, Tw: 1, Eh: 1, Ew: 1, qa: 0, qb: 0, invWp: 1, invPhw: 1, invNtw: 1, invTaps: 1 };

/** One phase of dgrad along one axis: the rows a + s·i and the taps r0 + T·t that reach them. */
interface AxisPhase {
  a: number;
  /** rows in the phase */
  rows: number;
  /** taps reaching them, r0 + T·t for t < taps */
  taps: number;
  r0: number;
  T: number;
  /** dY row of row i through tap t: i + q − E·t */
  q: number;
  E: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Rows h ≡ a (mod s) receive from taps r with (h + p − r·d) ≡ 0 (mod s): r ≡ r0 (mod s / gcd(s, d)). */
function axisPhases(size: number, k: number, s: number, p: number, d: number): AxisPhase[] {
  const T = s / gcd(s, d), E = d / gcd(s, d);
  return Array.from({ length: s }, (_, a) => {
    const rows = a < size ? Math.ceil((size - a) / s) : 0;
    let r0 = 0;
    while (r0 < Math.min(k, T) && (((a + p - r0 * d) % s) + s) % s !== 0) r0++;
    const taps = r0 < Math.min(k, T) ? Math.floor((k - 1 - r0) / T) + 1 : 0;
    return { a, rows, taps, r0, T, q: taps ? (a + p - r0 * d) / s : 0, E };
  });
}

const passCode = new Map<string, string>();

export const recip = (d: number): number => Math.fround(1 / d);

/** Compiles (cached) and dispatches one pass; splits N over several dispatches past the grid limit. */
function launch(pl: PassPlan, g: ConvGeometry, { bound: tensors, tuning, hasBias = false, phase = NO_PHASE }: Launch, kChunk = 0): void {
  const tile = tuning.tile ?? convTile(pl.M, pl.N, pl.K, pl.batches);
  const flags = (...f: boolean[]): string => f.map(Number).join('');
  // the code is memoised on every input of passWGSL (building it costs more than a dispatch)
  const key = `${pl.pass}|${pl.pointwise ? 'pointwise' : 'implicit'}|${tile.tm}x${tile.tn}x${tile.tk}/${tile.rm}x${tile.rn}|v${flags(pl.vecA, pl.vecB, pl.vecC)}`;
  let code = passCode.get(key);
  if (code === undefined) passCode.set(key, (code = passWGSL(pl, tile)));
  const k = runtime().kernel(`conv.${pl.pass}`, code);
  const maxGroups = device().limits.maxComputeWorkgroupsPerDimension;
  check(pl.batches <= maxGroups && Math.ceil(pl.M / tile.tm) <= maxGroups, 'conv2d', () => `${pl.pass} grid of ${pl.batches} x ${Math.ceil(pl.M / tile.tm)} workgroups exceeds the limit ${maxGroups}`);
  // columns per dispatch: a multiple of tn, so vec4 stores stay aligned
  const chunk = Math.min(maxGroups, Math.ceil((tuning.columnsPerDispatch ?? Infinity) / tile.tn)) * tile.tn;
  const [KH, KW] = g.kernel, [SH, SW] = g.stride;
  const bound: Record<string, Bound> = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, t.binding()]));
  for (let nBase = 0; nBase < pl.N; nBase += chunk) {
    const uniforms = {
      C: g.C, H: g.H, W: g.W, Co: g.Co, OH: g.OH, OW: g.OW, hw: g.H * g.W, ohw: g.OH * g.OW, G: g.groups, Cig: g.Cig, Cog: g.Cog,
      KW, KHW: KH * KW, SH, SW, PH: g.padding[0], PW: g.padding[1], DH: g.dilation[0], DW: g.dilation[1],
      gm: pl.M, gn: Math.min(chunk, pl.N - nBase), gk: pl.K, nBase, kChunk, hasBias: Number(hasBias),
      invOHW: recip(g.OH * g.OW), invOW: recip(g.OW), invHW: recip(g.H * g.W), invW: recip(g.W), invKHW: recip(KH * KW), invKW: recip(KW),
      ...phase,
    };
    runtime().dispatch(k, bound, uniforms, gemmGrid(tile, pl.M, uniforms.gn, pl.batches));
  }
}

/** Images x groups fit in one grid dimension (the pointwise path puts them on z). */
const pointwiseFits = (g: ConvGeometry): boolean => isPointwise(g) && g.N * g.groups <= device().limits.maxComputeWorkgroupsPerDimension;

// ---------------------------------------------------------------- public ops
// (the explicit im2col path for CPU adapters lives in kernels/conv-explicit.ts)

/** Overrides for tests and tuning. */
export interface ConvTuning {
  tile?: GemmTile;
  /** wgrad: the K extent of each split (rounded up to the tile's tk) */
  splitK?: number;
  /** GEMM columns per dispatch (rounded up to the tile's tn); the grid limit sets the default */
  columnsPerDispatch?: number;
  /** implicit GEMM, or explicit im2col + matmul (default: explicit on CPU adapters when one image's columns fit) */
  strategy?: 'implicit' | 'explicit';
  /** explicit path: at most this many images per chunk (default: as many as fit EXPLICIT_BYTES) */
  explicitChunk?: number;
}

/** A forward's output, and the unfolded input when the explicit path made one and it was asked for. */
export interface ConvForward {
  y: Tensor;
  columns: Tensor | null;
}

/** y[n, co, oh, ow] = b[co] + Σ_{ci, r, c} w[co, ci, r, c] · x[n, g·Cig + ci, oh·s − p + r·d, ow·s − p + c·d] (PyTorch's conv2d). */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null, opts: ConvOptions = {}, tuning: ConvTuning = {}): Tensor {
  return conv2dForward(x, w, bias, opts, tuning, false).y;
}

/**
 * conv2d for training: on the explicit path it also returns the unfolded input, which
 * conv2dWeightGrad then reuses instead of unfolding x again (the caller disposes it).
 */
export function conv2dKeepColumns(x: Tensor, w: Tensor, bias: Tensor | null, opts: ConvOptions = {}, tuning: ConvTuning = {}): ConvForward {
  return conv2dForward(x, w, bias, opts, tuning, true);
}

function conv2dForward(x: Tensor, w: Tensor, bias: Tensor | null, opts: ConvOptions, tuning: ConvTuning, keepColumns: boolean): ConvForward {
  const op = 'conv2d';
  const g = conv2dGeometry(op, x.shape, w.shape, opts);
  checkInputs(op, bias ? [x, w, bias] : [x, w]);
  checkF32(op, ['input', x], ['weight', w], ...(bias ? [['bias', bias] as [string, Tensor]] : []));
  if (bias) check(bias.rank === 1 && bias.shape[0] === g.Co, op, () => `bias must be [${g.Co}], got ${fmtShape(bias.shape)} (weight ${fmtShape(w.shape)})`);
  const per = x.device === 'cpu' || g.N * g.Co * g.OH * g.OW === 0 ? 0 : explicitChunk(g, tuning);
  if (per > 0) return explicitForward(x, w, bias, g, keepColumns, per);
  const y = Tensor.empty(outShapeOf(g), 'f32', x.device, op);
  if (y.size === 0) return { y, columns: null };
  if (x.device === 'cpu') {
    const xs = x.cpu, ws = w.cpu, ys = y.cpu, ohw = g.OH * g.OW;
    if (bias) for (let i = 0; i < y.size; i++) ys[i] = bias.cpu[Math.floor(i / ohw) % g.Co];
    else ys.fill(0);
    forEachTap(g, (xi, wi, yi) => (ys[yi] += ws[wi] * xs[xi]));
    return { y, columns: null };
  }
  const pointwise = pointwiseFits(g);
  const K = g.Cig * g.kernel[0] * g.kernel[1];
  const hw = g.OH * g.OW;
  const pl: PassPlan = pointwise
    ? { pass: 'forward', pointwise, M: g.Cog, N: hw, K, batches: g.N * g.groups, vecA: K % 4 === 0, vecB: hw % 4 === 0, vecC: hw % 4 === 0 }
    : { pass: 'forward', pointwise, M: g.Cog, N: g.N * hw, K, batches: g.groups, vecA: K % 4 === 0, vecB: false, vecC: hw % 4 === 0 };
  launch(pl, g, { bound: { x, w, bias: bias ?? w, y }, tuning, hasBias: Boolean(bias) });
  return { y, columns: null };
}

/** dx = ∂/∂x of conv2d given dy: dx[n, ci, h, w] = Σ w[co, ci', r, c] · dy[n, co, (h + p − r·d)/s, (w + p − c·d)/s] over exact, in-range positions. */
export function conv2dInputGrad(dy: Tensor, w: Tensor, xShape: Shape, opts: ConvOptions = {}, tuning: ConvTuning = {}): Tensor {
  const op = 'conv2dInputGrad';
  const g = conv2dGeometry(op, xShape, w.shape, opts);
  checkInputs(op, [dy, w]);
  checkF32(op, ['dy', dy], ['weight', w]);
  check(dy.shape.join() === outShapeOf(g).join(), op, () => `dy must be ${fmtShape(outShapeOf(g))} for input ${fmtShape(xShape)} and weight ${fmtShape(w.shape)}, got ${fmtShape(dy.shape)}`);
  const dx = Tensor.empty([...xShape], 'f32', dy.device, op);
  if (dx.size === 0) return dx;
  if (dy.device === 'cpu') {
    const d = dx.cpu, ws = w.cpu, gy = dy.cpu;
    d.fill(0);
    forEachTap(g, (xi, wi, yi) => (d[xi] += ws[wi] * gy[yi]));
    return dx;
  }
  const per = explicitChunk(g, tuning);
  if (per > 0) {
    explicitInputGrad(dy, w, g, dx, per);
    return dx;
  }
  const hw = g.H * g.W;
  if (pointwiseFits(g)) {
    const pl: PassPlan = { pass: 'dgrad', pointwise: true, M: g.Cig, N: hw, K: g.Cog, batches: g.N * g.groups, vecA: g.Cig % 4 === 0, vecB: hw % 4 === 0, vecC: hw % 4 === 0 };
    launch(pl, g, { bound: { dy, w, dx }, tuning });
    return dx;
  }
  const strided = g.stride[0] > 1 || g.stride[1] > 1;
  // one tiling for every phase (their K and N differ), chosen for the whole problem
  const tile = tuning.tile ?? convTile(g.Cig, g.N * hw, g.Cog * g.kernel[0] * g.kernel[1], g.groups);
  for (const ph of axisPhases(g.H, g.kernel[0], g.stride[0], g.padding[0], g.dilation[0])) {
    for (const pw of axisPhases(g.W, g.kernel[1], g.stride[1], g.padding[1], g.dilation[1])) {
      const rows = ph.rows * pw.rows, taps = ph.taps * pw.taps;
      if (rows === 0) continue;
      // a phase no tap reaches gets zeros (K = 0)
      const pl: PassPlan = { pass: 'dgrad', pointwise: false, M: g.Cig, N: g.N * rows, K: g.Cog * taps, batches: g.groups, vecA: false, vecB: false, vecC: !strided && hw % 4 === 0 };
      const phase: PhaseUniforms = {
        pa: ph.a, pb: pw.a, Wp: pw.rows, phw: rows, ntw: Math.max(pw.taps, 1), taps: Math.max(taps, 1), r0: ph.r0, c0: pw.r0, Th: ph.T, Tw: pw.T, Eh: ph.E, Ew: pw.E, qa: ph.q, qb: pw.q,
        invWp: recip(pw.rows), invPhw: recip(rows), invNtw: recip(Math.max(pw.taps, 1)), invTaps: recip(Math.max(taps, 1)),
      };
      launch(pl, g, { bound: { dy, w, dx }, tuning: { ...tuning, tile }, phase });
    }
  }
  return dx;
}

/**
 * dw = ∂/∂w of conv2d given dy: dw[co, ci, r, c] = Σ_{n, oh, ow} dy[n, co, oh, ow] · x[n, g·Cig + ci, oh·s − p + r·d, ow·s − p + c·d].
 * `columns`: the unfolded x that conv2dKeepColumns returned for this convolution.
 */
export function conv2dWeightGrad(dy: Tensor, x: Tensor, wShape: Shape, opts: ConvOptions = {}, tuning: ConvTuning = {}, columns?: Tensor | null): Tensor {
  const op = 'conv2dWeightGrad';
  const g = conv2dGeometry(op, x.shape, wShape, opts);
  checkInputs(op, [dy, x]);
  checkF32(op, ['dy', dy], ['input', x]);
  check(dy.shape.join() === outShapeOf(g).join(), op, () => `dy must be ${fmtShape(outShapeOf(g))} for input ${fmtShape(x.shape)} and weight ${fmtShape(wShape)}, got ${fmtShape(dy.shape)}`);
  const K = g.N * g.OH * g.OW;
  if (x.device === 'cpu') {
    const dw = Tensor.empty([...wShape], 'f32', x.device, op);
    const d = dw.cpu, xs = x.cpu, gy = dy.cpu;
    d.fill(0);
    forEachTap(g, (xi, wi, yi) => (d[wi] += gy[yi] * xs[xi]));
    return dw;
  }
  if (K === 0) {
    const dw = Tensor.empty([...wShape], 'f32', x.device, op);
    runtime().clear(dw.buffer, dw.size * 4);
    return dw;
  }
  if (columns) {
    const Kg = g.Cig * g.kernel[0] * g.kernel[1];
    check(columns.shape.join() === `${g.N},${g.groups},${Kg},${g.OH * g.OW}`, op, () => `columns must be [${g.N}, ${g.groups}, ${Kg}, ${g.OH * g.OW}] for input ${fmtShape(x.shape)}, got ${fmtShape(columns.shape)}`);
  }
  const per = columns ? g.N : explicitChunk(g, tuning);
  if (per > 0) return explicitWeightGrad(dy, x, g, wShape, per, columns ?? undefined);
  const pointwise = isPointwise(g);
  const N = g.Cig * g.kernel[0] * g.kernel[1];
  const ohw = g.OH * g.OW;
  const pl: PassPlan = { pass: 'wgrad', pointwise, M: g.Cog, N, K, batches: g.groups, vecA: ohw % 4 === 0, vecB: pointwise && ohw % 4 === 0, vecC: N % 4 === 0 };
  const tile = tuning.tile ?? convTile(pl.M, pl.N, K, g.groups);
  const maxGroups = device().limits.maxComputeWorkgroupsPerDimension;
  // split K so the grid fills the device; each split writes its own partial sum
  const tiles = Math.ceil(pl.M / tile.tm) * Math.ceil(pl.N / tile.tn) * g.groups;
  const wanted = tuning.splitK ? Math.ceil(K / tuning.splitK) : Math.min(Math.ceil(TARGET_WORKGROUPS / tiles), Math.floor(K / MIN_SPLIT_K));
  const splits0 = Math.max(1, Math.min(wanted, Math.floor(maxGroups / g.groups)));
  const kChunk = Math.ceil(Math.ceil(K / splits0) / tile.tk) * tile.tk;
  const splits = Math.ceil(K / kChunk);
  const partial = Tensor.empty(splits === 1 ? [...wShape] : [splits, g.Co * N], 'f32', x.device, op);
  launch({ ...pl, batches: splits * g.groups }, g, { bound: { dy, x, dw: partial }, tuning: { ...tuning, tile } }, kChunk);
  if (splits === 1) return partial;
  // a fixed-order reduction over the splits: deterministic
  const total = sum(partial, 0);
  partial.dispose();
  const dw = total.reshape(wShape);
  total.dispose();
  return dw;
}
