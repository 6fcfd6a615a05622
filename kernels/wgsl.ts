// The block every kernel starts with, generated in one place: the uniform struct `p`, the storage
// bindings (read-only first, then read-write, numbered in that order), the `main` header and, for
// linear kernels, the flat invocation index over a grid made by grid1.

/** WGSL for the linear workgroup index of a grid made by grid1 (wid and nwg are main's builtins). */
export const LINEAR_WG = 'wid.x + wid.y * nwg.x';

/** WGSL element type of a storage array: 'f32', 'i32', 'u32', 'vec4<f32>', 'atomic<u32>', ... */
export type ElemType = string;

export interface KernelBindings {
  /** Uniform struct fields in order, name -> WGSL type (read in WGSL as `p.name`). */
  uniforms?: Record<string, string>;
  /** Read-only storage arrays, name -> element type. */
  read?: Record<string, ElemType>;
  /** Read-write storage arrays, name -> element type. */
  write?: Record<string, ElemType>;
  /** Code placed before the bindings (helper functions, constants, workgroup arrays). */
  preamble?: string;
}

export interface KernelSignature extends KernelBindings {
  /** Workgroup size: a count (1-D) or [x, y, z]. */
  wg: number | readonly [number, number, number];
}

/**
 * The module-scope declarations alone: the preamble, the struct `P` with its uniform `p` at
 * binding 0 (when there are uniforms), then the read-only and the read-write storage arrays. For
 * generators that write their own entry point (the GEMM).
 */
export function kernelBindings(sig: KernelBindings): string {
  const lines: string[] = [];
  if (sig.preamble) lines.push(sig.preamble.trim());
  let b = 0;
  const fields = Object.entries(sig.uniforms ?? {});
  if (fields.length) {
    lines.push(`struct P { ${fields.map(([n, t]) => `${n}: ${t}`).join(', ')} }`);
    lines.push(`@group(0) @binding(${b++}) var<uniform> p: P;`);
  }
  for (const [n, t] of Object.entries(sig.read ?? {})) lines.push(`@group(0) @binding(${b++}) var<storage, read> ${n}: array<${t}>;`);
  for (const [n, t] of Object.entries(sig.write ?? {})) lines.push(`@group(0) @binding(${b++}) var<storage, read_write> ${n}: array<${t}>;`);
  return lines.join('\n');
}

/** The bindings, struct and `fn main(wid, nwg, li)` header, ready for the body and a closing `}`. */
export function kernelHeader(sig: KernelSignature): string {
  const wg = typeof sig.wg === 'number' ? [sig.wg, 1, 1] : sig.wg;
  return `${kernelBindings(sig)}
@compute @workgroup_size(${wg.join(', ')})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(local_invocation_id) lid: vec3<u32>) {`;
}

/**
 * A 1-D kernel: `i` is the flat invocation index over a grid1 grid. With `bound`, invocations at
 * or past that uniform (e.g. 'n' for p.n) return at once.
 */
export function linearKernel(sig: KernelSignature & { wg: number; bound?: string }, body: string): string {
  const guard = sig.bound ? `\n  if (i >= p.${sig.bound}) { return; }` : '';
  return `${kernelHeader(sig)}\n  let i = (${LINEAR_WG}) * ${sig.wg}u + li;${guard}\n${body}\n}`;
}

/**
 * A kernel with one workgroup per item (a row, a channel, a chunk): `w` is the flat workgroup
 * index over a grid1 grid and `li` the invocation within it. With `bound`, workgroups at or past
 * that uniform return at once (the whole workgroup, so barriers after it stay uniform).
 */
export function workgroupKernel(sig: KernelSignature & { bound?: string }, body: string): string {
  const guard = sig.bound ? `\n  if (w >= p.${sig.bound}) { return; }` : '';
  return `${kernelHeader(sig)}\n  let w = ${LINEAR_WG};${guard}\n${body}\n}`;
}

/** WGSL `is_nan(v: f32) -> bool`, on the bits: a compiler may assume `v != v` is false. */
export const IS_NAN_WGSL = 'fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }';

type CodeArg = string | number | boolean | undefined;

/**
 * Memoises a kernel generator on its arguments: generating a string costs tens of microseconds,
 * more than recording the dispatch, so a launcher calls the memoised form on every dispatch. The
 * generator must be a pure function of its (primitive) arguments, so the memo key (all of them)
 * covers every constant in the code; the runtime still caches the pipeline by the code itself.
 */
export function memoCode<A extends CodeArg[]>(gen: (...args: A) => string): (...args: A) => string {
  const memo = new Map<string, string>();
  return (...args: A): string => {
    const key = args.join('\u0001');
    let code = memo.get(key);
    if (code === undefined) memo.set(key, (code = gen(...args)));
    return code;
  };
}
