// Elementwise kernels: unary maps with up to two scalar parameters, and n-ary maps with NumPy
// broadcasting (binary arithmetic, comparisons, where). Each op has its WGSL expression and its
// float64 CPU reference side by side.

import { check, fmtShape, OpError } from './errors.js';
import { runtime, grid1, type Bound } from './runtime.js';
import { mergeDims, pad8 } from './dims.js';
import { linearKernel, memoCode } from './wgsl.js';
import { dispatchFlat, overBinding, rowsPerChunk, sliceRows, writeRows } from './split.js';
import { Tensor, stridesOf, type DType, type Shape } from './tensor.js';

const WG = 256;

// ---------------------------------------------------------------- unary

interface UnaryDef {
  wgsl: (x: string) => string;
  cpu: (x: number, p0: number, p1: number) => number;
  /** Defined on integer tensors too. */
  int?: boolean;
}

const UNARY = {
  neg: { wgsl: (x) => `-${x}`, cpu: (x) => -x, int: true },
  abs: { wgsl: (x) => `abs(${x})`, cpu: Math.abs, int: true },
  exp: { wgsl: (x) => `exp(${x})`, cpu: Math.exp },
  log: { wgsl: (x) => `log(${x})`, cpu: Math.log },
  sqrt: { wgsl: (x) => `sqrt(${x})`, cpu: Math.sqrt },
  rsqrt: { wgsl: (x) => `inverseSqrt(${x})`, cpu: (x) => 1 / Math.sqrt(x) },
  relu: { wgsl: (x) => `max(${x}, 0.0)`, cpu: (x) => (x > 0 ? x : 0) },
  // stable on both sides: never exponentiates a large positive number
  sigmoid: { wgsl: (x) => `select(exp(${x}) / (1.0 + exp(${x})), 1.0 / (1.0 + exp(-${x})), ${x} >= 0.0)`, cpu: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))) },
  // clamped: some drivers evaluate tanh through exp and return NaN for large |x|; tanh(15) is 1 in f32
  tanh: { wgsl: (x) => `tanh(clamp(${x}, -15.0, 15.0))`, cpu: Math.tanh },
  square: { wgsl: (x) => `${x} * ${x}`, cpu: (x) => x * x, int: true },
  reciprocal: { wgsl: (x) => `1.0 / ${x}`, cpu: (x) => 1 / x },
  sign: { wgsl: (x) => `sign(${x})`, cpu: Math.sign, int: true },
  floor: { wgsl: (x) => `floor(${x})`, cpu: Math.floor },
  /** 1 where x > 0 else 0: the derivative of relu */
  step: { wgsl: (x) => `select(0.0, 1.0, ${x} > 0.0)`, cpu: (x) => (x > 0 ? 1 : 0) },
  /** p0 * x + p1 */
  affine: { wgsl: (x) => `p.p0 * ${x} + p.p1`, cpu: (x, a, b) => a * x + b },
  /** min(max(x, p0), p1) */
  clamp: { wgsl: (x) => `clamp(${x}, p.p0, p.p1)`, cpu: (x, lo, hi) => Math.min(Math.max(x, lo), hi) },
  /** x ** p0, defined for negative x when p0 is an integer */
  pow: { wgsl: (x) => `powi(${x}, p.p0)`, cpu: (x, e) => x ** e },
} satisfies Record<string, UnaryDef>;

export type UnaryOp = keyof typeof UNARY;
export const UNARY_OPS = Object.keys(UNARY) as UnaryOp[];

export const POWI_WGSL = /* wgsl */ `
fn powi(x: f32, e: f32) -> f32 {
  if (e == 0.0) { return 1.0; }
  if (e == 1.0) { return x; }
  if (e == 2.0) { return x * x; }
  let m = pow(abs(x), e);
  if (x >= 0.0) { return m; }
  if (fract(e) != 0.0) { return bitcast<f32>(0x7fc00000u | u32(m != m)); } // NaN (not const-folded)
  return select(m, -m, fract(e * 0.5) != 0.0);
}`;

/** The components of a vec4, for code that applies a scalar expression to each. */
const XYZW = ['x', 'y', 'z', 'w'] as const;

// vec4: n counts vec4s (the size is a multiple of 4). lavapipe compiles every storage load to a
// scalar load per lane; one vec4 load per invocation does a quarter of the index work and loads.
const unaryCode = memoCode((op: UnaryOp, t: DType, vec4: boolean) => linearKernel(
  { preamble: op === 'pow' ? POWI_WGSL : '', uniforms: { n: 'u32', p0: 'f32', p1: 'f32' }, read: { x: vec4 ? `vec4<${t}>` : t }, write: { y: vec4 ? `vec4<${t}>` : t }, wg: WG, bound: 'n' },
  vec4
    ? `  let v = x[i];\n  y[i] = vec4<${t}>(${XYZW.map((c) => (UNARY[op] as UnaryDef).wgsl(`v.${c}`)).join(', ')});`
    : `  let v = x[i];\n  y[i] = ${(UNARY[op] as UnaryDef).wgsl('v')};`,
));

/** y = op(x), with scalar parameters p0, p1 where the op takes them. */
export function unary(op: UnaryOp, x: Tensor, p0 = 0, p1 = 0): Tensor {
  const def: UnaryDef = UNARY[op];
  if (!def) throw new OpError('unary', `unknown op '${op}'`);
  check(x.dtype === 'f32' || def.int, op, `needs an f32 tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
  const out = Tensor.empty(x.shape, x.dtype, x.device, op);
  if (x.device === 'cpu') {
    const a = x.cpu, o = out.cpu;
    for (let i = 0; i < a.length; i++) o[i] = def.cpu(a[i], p0, p1);
    return out;
  }
  const vec4 = x.size % 4 === 0;
  const n = vec4 ? x.size / 4 : x.size;
  const k = runtime().kernel(`elementwise.unary.${op}`, unaryCode(op, x.dtype, vec4));
  dispatchFlat(k, { x: x.binding(), y: out.binding() }, {}, { p0, p1 }, n, vec4 ? 16 : 4, WG);
  return out;
}

const castCode = memoCode((from: DType, to: DType) => linearKernel(
  { uniforms: { n: 'u32' }, read: { x: from }, write: { y: to }, wg: WG, bound: 'n' },
  `  y[i] = ${to}(x[i]);`,
));

/** Converts between f32, i32 and u32 (floats truncate toward zero). */
export function cast(x: Tensor, dtype: DType): Tensor {
  const out = Tensor.empty(x.shape, dtype, x.device, 'cast');
  if (x.device === 'cpu') {
    const a = x.cpu, o = out.cpu;
    for (let i = 0; i < a.length; i++) o[i] = dtype === 'f32' ? Math.fround(a[i]) : Math.trunc(a[i]);
    return out;
  }
  const k = runtime().kernel('elementwise.cast', castCode(x.dtype, dtype));
  dispatchFlat(k, { x: x.binding(), y: out.binding() }, {}, {}, x.size, 4, WG);
  return out;
}

// ---------------------------------------------------------------- broadcasting

/** NumPy broadcasting of any number of shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v !== 1) {
        if (d !== 1 && d !== v) throw new OpError(op, `shapes ${shapes.map(fmtShape).join(' and ')} do not broadcast`);
        d = v;
      }
    }
    out.push(shapes.some((s) => (s[s.length - rank + i] ?? 1) === 0) ? 0 : d);
  }
  return out;
}

/** Strides of `s` read as `out` (0 along broadcast dimensions). */
export function broadcastStrides(s: Shape, out: Shape): number[] {
  const st = stridesOf(s);
  return out.map((_, i) => {
    const j = i - (out.length - s.length);
    return j < 0 || s[j] === 1 ? 0 : st[j];
  });
}

/**
 * WGSL that turns the flat index i (of the merged output shape, rank dims) into each input's element
 * offset o_a, o_b... through its strides; nothing for rank < 0 (every input read at i).
 */
function stridedOffsets(names: string[], rank: number): string {
  if (rank < 0) return '';
  let index = `  var r = i;\n  ` + names.map((n) => `var o_${n} = 0u;`).join(' ') + '\n';
  for (let d = rank - 1; d >= 0; d--) {
    const sh = `p.shape[${d >> 2}][${d & 3}]`;
    // the outermost coordinate is what is left (i < n): no division for it (integer division is
    // scalarised per lane on CPU adapters)
    index += `  { let c = ${d === 0 ? 'r' : `r % ${sh}; r = r / ${sh}`}; ` + names.map((n, j) => `o_${n} += c * p.s${j}[${d >> 2}][${d & 3}];`).join(' ') + ' }\n';
  }
  return index;
}

/** The uniforms (element count, merged shape, each input's strides) and the inputs of a map kernel. */
function mapBindings(names: string[], elems: string[]): { uniforms: Record<string, string>; read: Record<string, string> } {
  const uniforms: Record<string, string> = { n: 'u32', shape: 'array<vec4<u32>, 2>' };
  const read: Record<string, string> = {};
  names.forEach((n, j) => {
    uniforms[`s${j}`] = 'array<vec4<u32>, 2>';
    read[n] = elems[j];
  });
  return { uniforms, read };
}

/**
 * mapN's kernel over inputs of the given dtypes ('f32,i32'); rank -1 indexes every input directly.
 * `lanes` is '' (one element per invocation) or one letter per input for the vec4 form, where an
 * invocation computes 4 adjacent outputs (the innermost dim is a multiple of 4): 'v' reads that
 * input as vec4 (innermost stride 1), 's' reads one scalar for all 4 (innermost stride 0, e.g. a
 * per-row or per-channel operand). Shape and strides are then in vec4 units along the innermost dim.
 */
const mapCode = memoCode((expr: string, preamble: string | undefined, dtypes: string, outDtype: DType, rank: number, lanes: string): string => {
  const types = dtypes.split(',');
  const names = types.map((_, k) => String.fromCharCode(97 + k));
  if (lanes) return mapVec4Code(expr, preamble, types, names, outDtype, rank, lanes);
  const index = stridedOffsets(names, rank);
  const vals = names.map((n) => `let v_${n} = ${n}[${rank < 0 ? 'i' : `o_${n}`}];`).join(' ');
  const { uniforms, read } = mapBindings(names, types);
  return linearKernel({ preamble, uniforms, read, write: { y: outDtype }, wg: WG, bound: 'n' }, `${index}  ${vals}\n  y[i] = ${expr};`);
});

/** The vec4 form of mapCode (see there); `expr` is in v_a, v_b... and is applied per component. */
function mapVec4Code(expr: string, preamble: string | undefined, types: string[], names: string[], outDtype: DType, rank: number, lanes: string): string {
  const index = stridedOffsets(names, rank);
  const loads = names.map((n) => `let l_${n} = ${n}[${rank < 0 ? 'i' : `o_${n}`}];`).join(' ');
  const comps = XYZW.map((c) => `  { ${names.map((n, j) => `let v_${n} = l_${n}${lanes[j] === 'v' ? `.${c}` : ''};`).join(' ')} o.${c} = ${expr}; }`).join('\n');
  const { uniforms, read } = mapBindings(names, types.map((t, j) => (lanes[j] === 'v' ? `vec4<${t}>` : t)));
  return linearKernel({ preamble, uniforms, read, write: { y: `vec4<${outDtype}>` }, wg: WG, bound: 'n' },
    `${index}  ${loads}\n  var o: vec4<${outDtype}>;\n${comps}\n  y[i] = o;`);
}

/**
 * The vec4 lanes ('v'/'s' per input, see mapCode) when the merged shape allows them, else ''.
 * Needs an innermost dim that is a multiple of 4, each input walking it contiguously (stride 1) or
 * not at all (stride 0), and the other strides of the contiguous inputs multiples of 4 (aligned vec4s).
 */
function vec4Lanes(cs: number[], strides: number[][]): string {
  const last = cs.length - 1;
  if (last < 0 || cs[last] % 4 !== 0) return '';
  let lanes = '';
  for (const s of strides) {
    if (s[last] === 1 && s.every((v, d) => d === last || v % 4 === 0)) lanes += 'v';
    else if (s[last] === 0) lanes += 's';
    else return '';
  }
  return lanes.includes('v') ? lanes : '';
}

export interface MapOptions {
  /** Ignored: kernels are cached by their generated code, so embedded constants need no key. */
  key?: string;
  /** WGSL placed before the entry point (helper functions). */
  preamble?: string;
  /** Output shape when it is larger than the inputs' broadcast (each input broadcasts to it). */
  outShape?: Shape;
}

/**
 * out[i] = f(in_0[i], ..., in_k[i]) under broadcasting. `wgsl` maps argument names (a, b, c...)
 * to an expression; `cpu` is the reference.
 */
export function mapN(
  op: string,
  inputs: Tensor[],
  outDtype: DType,
  wgsl: (args: string[]) => string,
  cpu: (args: number[]) => number,
  opts: MapOptions = {},
): Tensor {
  const devs = new Set(inputs.map((t) => t.device));
  check(devs.size === 1, op, `inputs live on different backends (${[...devs].join(', ')})`);
  const shape = broadcastShapes(op, ...inputs.map((t) => t.shape), ...(opts.outShape ? [opts.outShape] : []));
  if (opts.outShape) check(shape.join() === opts.outShape.join(), op, () => `inputs ${inputs.map((t) => fmtShape(t.shape)).join(', ')} do not broadcast to ${fmtShape(opts.outShape!)}`);
  check(shape.length <= 8, op, `rank ${shape.length} exceeds 8`);
  const out = Tensor.empty(shape, outDtype, inputs[0].device, op);
  if (out.size === 0) return out;
  const { shape: cs, strides } = mergeDims(shape, inputs.map((t) => broadcastStrides(t.shape, shape)));
  if (out.device === 'cpu') {
    const arrs = inputs.map((t) => t.cpu);
    const o = out.cpu;
    const rank = cs.length;
    const idx = new Array<number>(rank).fill(0);
    const off = new Array<number>(inputs.length).fill(0);
    const args = new Array<number>(inputs.length);
    for (let i = 0; i < o.length; i++) {
      for (let k = 0; k < arrs.length; k++) args[k] = arrs[k][off[k]];
      o[i] = cpu(args);
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        for (let k = 0; k < off.length; k++) off[k] += strides[k][d];
        if (idx[d] < cs[d]) break;
        for (let k = 0; k < off.length; k++) off[k] -= strides[k][d] * cs[d];
        idx[d] = 0;
      }
    }
    return out;
  }
  const names = inputs.map((_, k) => String.fromCharCode(97 + k));
  const rank = cs.length;
  // same layout for every input (no broadcasting): index directly
  const direct = strides.every((s) => s.length === rank && s.every((v, d) => v === stridesOf(cs)[d]));
  if (!direct && overBinding(out, ...inputs)) {
    out.dispose();
    return mapRows(op, inputs, shape, outDtype, wgsl, cpu, opts);
  }
  const lanes = vec4Lanes(cs, strides);
  // the expression is the only part of the code the caller supplies: it keys the memo with the rest
  const k = runtime().kernel(`elementwise.${op}`, mapCode(wgsl(names.map((n) => `v_${n}`)), opts.preamble, inputs.map((t) => t.dtype).join(','), outDtype, direct ? -1 : rank, lanes));
  const n = lanes ? out.size / 4 : out.size;
  // the vec4 form indexes in vec4 units along the innermost dim: its size and the contiguous inputs' strides / 4
  const u: Record<string, number | number[]> = { shape: pad8(lanes ? cs.map((v, d) => (d === rank - 1 ? v / 4 : v)) : cs) };
  const bound: Record<string, Bound> = { y: out.binding() };
  strides.forEach((s, j) => (u[`s${j}`] = pad8(lanes[j] === 'v' ? s.map((v, d) => (d === rank - 1 ? 1 : v / 4)) : s)));
  inputs.forEach((t, j) => (bound[names[j]] = t.binding()));
  if (direct) dispatchFlat(k, bound, {}, u, n, lanes ? 16 : 4, WG);
  else runtime().dispatch(k, bound, { ...u, n }, grid1(Math.ceil(n / WG)));
  return out;
}

/**
 * A broadcasting map whose tensors exceed one binding, on chunks of the output's rows along dim 0:
 * inputs that span that dim are sliced, the others (broadcast along it) are passed whole.
 */
function mapRows(op: string, inputs: Tensor[], shape: number[], outDtype: DType, wgsl: (args: string[]) => string, cpu: (args: number[]) => number, opts: MapOptions): Tensor {
  const rows = shape[0];
  const spans = inputs.map((t) => t.rank === shape.length && t.shape[0] === rows && rows > 1);
  for (const [j, t] of inputs.entries()) {
    check(spans[j] || !overBinding(t), op, () => `input ${fmtShape(t.shape)} exceeds one storage binding (${runtime().bindingLimit} bytes) and is broadcast along dim 0 of the output ${fmtShape(shape)}: it cannot be split`);
  }
  const rowBytes = (4 * shape.reduce((a, b) => a * b, 1)) / rows;
  const per = rowsPerChunk(op, rows, rowBytes, () => `output ${fmtShape(shape)}`);
  const out = Tensor.empty(shape, outDtype, inputs[0].device, op);
  for (let a = 0; a < rows; a += per) {
    const b = Math.min(rows, a + per);
    const args = inputs.map((t, j) => (spans[j] ? sliceRows(t, a, b) : t));
    const part = mapN(op, args, outDtype, wgsl, cpu, { ...opts, outShape: [b - a, ...shape.slice(1)] });
    writeRows(out, a, part);
    for (const [j, t] of args.entries()) if (spans[j]) t.dispose();
    part.dispose();
    runtime().flush();
  }
  return out;
}

// ---------------------------------------------------------------- binary arithmetic and comparisons

const BINARY = {
  add: { wgsl: (a: string, b: string) => `${a} + ${b}`, cpu: (a: number, b: number) => a + b },
  sub: { wgsl: (a: string, b: string) => `${a} - ${b}`, cpu: (a: number, b: number) => a - b },
  mul: { wgsl: (a: string, b: string) => `${a} * ${b}`, cpu: (a: number, b: number) => a * b },
  div: { wgsl: (a: string, b: string) => `${a} / ${b}`, cpu: (a: number, b: number) => a / b },
  max: { wgsl: (a: string, b: string) => `max(${a}, ${b})`, cpu: Math.max },
  min: { wgsl: (a: string, b: string) => `min(${a}, ${b})`, cpu: Math.min },
};
export type BinaryOp = keyof typeof BINARY;
export const BINARY_OPS = Object.keys(BINARY) as BinaryOp[];

const COMPARE = {
  eq: { sym: '==', cpu: (a: number, b: number) => a === b },
  ne: { sym: '!=', cpu: (a: number, b: number) => a !== b },
  lt: { sym: '<', cpu: (a: number, b: number) => a < b },
  le: { sym: '<=', cpu: (a: number, b: number) => a <= b },
  gt: { sym: '>', cpu: (a: number, b: number) => a > b },
  ge: { sym: '>=', cpu: (a: number, b: number) => a >= b },
};
export type CompareOp = keyof typeof COMPARE;
export const COMPARE_OPS = Object.keys(COMPARE) as CompareOp[];

function sameDType(op: string, ts: Tensor[]): DType {
  const d = ts[0].dtype;
  for (const t of ts) check(t.dtype === d, op, () => `dtype mismatch: ${ts.map((x) => `${x.dtype} ${fmtShape(x.shape)}`).join(' vs ')}`);
  return d;
}

/** a (op) b with broadcasting; integer division truncates (as WGSL does). */
export function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const def = BINARY[op];
  if (!def) throw new OpError('binary', `unknown op '${op}'`);
  const dt = sameDType(op, [a, b]);
  const ref = dt === 'f32' || op !== 'div' ? def.cpu : (x: number, y: number) => Math.trunc(x / y);
  return mapN(op, [a, b], dt, ([x, y]) => def.wgsl(x, y), ([x, y]) => ref(x, y));
}

/** A running sum of per-chunk partials: total + part with both freed (part itself when total is null). */
export function addPartial(total: Tensor | null, part: Tensor): Tensor {
  if (!total) return part;
  const next = binary('add', total, part);
  total.dispose();
  part.dispose();
  return next;
}

/** Elementwise comparison; returns an f32 mask of 0 and 1. */
export function compare(op: CompareOp, a: Tensor, b: Tensor): Tensor {
  const def = COMPARE[op];
  if (!def) throw new OpError('compare', `unknown op '${op}'`);
  sameDType(op, [a, b]);
  return mapN(op, [a, b], 'f32', ([x, y]) => `select(0.0, 1.0, ${x} ${def.sym} ${y})`, ([x, y]) => (def.cpu(x, y) ? 1 : 0));
}

/** cond != 0 ? a : b, broadcasting all three. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const dt = sameDType('where', [a, b]);
  const zero = cond.dtype === 'f32' ? '0.0' : `0${cond.dtype === 'u32' ? 'u' : 'i'}`;
  return mapN('where', [cond, a, b], dt, ([c, x, y]) => `select(${y}, ${x}, ${c} != ${zero})`, ([c, x, y]) => (c !== 0 ? x : y));
}
