// The WebGPU runtime: kernel compilation and caching, bind-group layouts reflected from the WGSL,
// uniforms in one reused ring buffer (dynamic offsets), one command encoder submitted in batches,
// staging-buffer uploads and readbacks that happen only when asked for.

import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { device, type Device } from './device.js';
import { BufferPool, BufferUsageFlags, MAP_READ_MODE, bufferIds, sizeClass } from './pool.js';
import { KernelProfiler, type KernelTime } from './profile.js';

export type { KernelTime };

const SHADER_STAGE_COMPUTE = 0x4;
/** Dispatches recorded before the encoder is submitted on its own. */
const BATCH_DISPATCHES = 256;
const BIND_GROUP_CACHE_MAX = 16384;

export type Uniforms = Record<string, number | readonly number[]>;

/**
 * A buffer bound to a kernel: `bytes` is the view size from byte `offset` (default 0, a multiple
 * of the adapter's minStorageBufferOffsetAlignment), `dtype` is checked against the WGSL.
 */
export interface Bound {
  buffer: GPUBuffer;
  bytes: number;
  offset?: number;
  dtype?: string;
}

interface StorageBinding {
  binding: number;
  name: string;
  readOnly: boolean;
  elem: string;
}

interface UniformField {
  name: string;
  offset: number;
  scalar: string; // f32 | i32 | u32
  count: number; // scalars in the field
}

export class Kernel {
  constructor(
    readonly id: number,
    readonly name: string,
    readonly key: string,
    readonly pipeline: GPUComputePipeline,
    readonly layout: GPUBindGroupLayout,
    readonly storage: StorageBinding[],
    readonly uniform: { binding: number; size: number; fields: UniformField[] } | null,
    readonly workgroupSize: [number, number, number],
  ) {}
}

function scalarOf(name: string, format?: string): string {
  if (name === 'f32' || name === 'i32' || name === 'u32') return name;
  if (/^vec[234][fiu]$/.test(name)) return { f: 'f32', i: 'i32', u: 'u32' }[name[4]]!;
  return format ?? 'u32';
}

type TypeLike = { name: string; size: number; format?: TypeLike | null; count?: number; stride?: number; members?: MemberLike[] };
type MemberLike = { name: string; offset: number; size: number; type: TypeLike };

function uniformFields(members: MemberLike[]): UniformField[] {
  return members.map((m) => {
    const t = m.type;
    if (t.name === 'array') {
      const inner = t.format!;
      const scalar = scalarOf(inner.name, inner.format?.name);
      const lanes = inner.name.startsWith('vec') ? Number(inner.name[3]) : 1;
      if (t.stride !== lanes * 4) throw new Error(`uniform field ${m.name}: use array<vec4<T>, N> so the stride is packed`);
      return { name: m.name, offset: m.offset, scalar, count: (t.count ?? 0) * lanes };
    }
    return { name: m.name, offset: m.offset, scalar: scalarOf(t.name, t.format?.name), count: m.size / 4 };
  });
}

class Runtime {
  readonly pool: BufferPool;
  /** code -> name -> kernel (one code under two names is two kernels, for profiles) */
  private kernels = new Map<string, Map<string, Kernel>>();
  private bindGroups = new Map<string, GPUBindGroup>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  private touched = new Set<GPUBuffer>();
  private ring: GPUBuffer;
  private ringMirror: ArrayBuffer;
  private ringView: DataView;
  private ringSlot = 0;
  private readonly slotBytes: number;
  private readonly ringSlots = BATCH_DISPATCHES;
  private staging = new Map<number, GPUBuffer[]>();
  private nextKernelId = 1;
  /** Counts submits: a timing loop or test can see batching at work. */
  submits = 0;
  /**
   * Pipelines created so far and the milliseconds their create calls took. lavapipe compiles a
   * pipeline's machine code at its first dispatch, on the queue's thread, so there most of a cold
   * start's compiling is not in `ms` but in the first step's GPU time.
   */
  readonly compiled = { pipelines: 0, ms: 0 };
  private profile: KernelProfiler | null = null;
  /** Byte offsets of a storage binding are multiples of this. */
  readonly bindingAlignment: number;
  private adapterBindingLimit: number | null = null;

  constructor(readonly dev: Device) {
    const gpu = dev.gpu;
    // a buffer may be larger than one binding: ops over such tensors bind it in ranges (kernels/split.ts)
    this.pool = new BufferPool(gpu, dev.limits.maxBufferSize);
    this.bindingAlignment = Number(gpu.limits.minStorageBufferOffsetAlignment);
    this.slotBytes = Math.max(256, Number(gpu.limits.minUniformBufferOffsetAlignment));
    this.ring = gpu.createBuffer({ size: this.slotBytes * this.ringSlots, usage: BufferUsageFlags.UNIFORM | BufferUsageFlags.COPY_DST });
    this.ringMirror = new ArrayBuffer(this.slotBytes * this.ringSlots);
    this.ringView = new DataView(this.ringMirror);
  }

  /**
   * Compiles `code` once: the cache key is the code itself (and the name), so a constant baked
   * into the WGSL can never reuse a pipeline compiled for another. A launcher that builds a large
   * string on every call may memoise it, as long as the memo's key covers every input of its
   * generator; the runtime still looks the pipeline up by the code.
   */
  kernel(name: string, code: string): Kernel {
    let named = this.kernels.get(code);
    const hit = named?.get(name);
    if (hit) return hit;
    // a specialisation's label in errors and profiles: the code's hash
    const key = fnv1a(code);
    const gpu = this.dev.gpu;
    let reflect: WgslReflect;
    try {
      reflect = new WgslReflect(code);
    } catch (e) {
      throw new Error(`kernel ${name} {${key}}: WGSL does not parse: ${(e as Error).message}`);
    }
    const entries: GPUBindGroupLayoutEntry[] = [];
    const storage: StorageBinding[] = [];
    let uniform: Kernel['uniform'] = null;
    for (const u of reflect.uniforms) {
      if (uniform) throw new Error(`kernel ${name}: one uniform struct at most`);
      const size = Math.ceil(u.size / 16) * 16;
      if (size > this.slotBytes) throw new Error(`kernel ${name}: uniform struct of ${size} bytes exceeds ${this.slotBytes}`);
      uniform = { binding: u.binding, size, fields: uniformFields((u.members ?? []) as unknown as MemberLike[]) };
      entries.push({ binding: u.binding, visibility: SHADER_STAGE_COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: size } });
    }
    for (const s of reflect.storage) {
      const readOnly = s.access !== 'read_write';
      const fmt = (s.type as unknown as TypeLike).format;
      const elem = fmt ? (fmt.name === 'atomic' ? fmt.format?.name ?? 'u32' : scalarOf(fmt.name, fmt.format?.name)) : 'u32';
      storage.push({ binding: s.binding, name: s.name, readOnly, elem });
      entries.push({ binding: s.binding, visibility: SHADER_STAGE_COMPUTE, buffer: { type: readOnly ? 'read-only-storage' : 'storage' } });
    }
    storage.sort((a, b) => a.binding - b.binding);
    const entry = reflect.entry.compute[0];
    if (!entry) throw new Error(`kernel ${name}: no @compute entry point`);
    const wg = (entry.workgroupSize ?? [1, 1, 1]) as number[];
    const invocations = wg[0] * (wg[1] ?? 1) * (wg[2] ?? 1);
    const maxInv = this.dev.limits.maxComputeInvocationsPerWorkgroup;
    if (invocations > maxInv) throw new Error(`kernel ${name} {${key}}: workgroup of ${invocations} invocations exceeds this adapter's ${maxInv}`);
    const t0 = performance.now();
    gpu.pushErrorScope('validation');
    const layout = gpu.createBindGroupLayout({ entries, label: name });
    const module = gpu.createShaderModule({ code, label: `${name} {${key}}` });
    const pipeline = gpu.createComputePipeline({
      layout: gpu.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: entry.name },
      label: name,
    });
    void gpu.popErrorScope().then((err) => {
      // the compile error explains any later "invalid pipeline" error, so it goes first
      if (err) this.dev.fatal = new Error(`kernel ${name} {${key}} failed to compile: ${err.message}${this.dev.fatal ? `\n(then: ${this.dev.fatal.message})` : ''}`);
    });
    this.compiled.pipelines++;
    this.compiled.ms += performance.now() - t0;
    const k = new Kernel(this.nextKernelId++, name, key, pipeline, layout, storage, uniform, [wg[0], wg[1] ?? 1, wg[2] ?? 1]);
    if (!named) this.kernels.set(code, (named = new Map()));
    named.set(name, k);
    return k;
  }

  /** The WGSL size of every specialisation compiled so far, by `name {key}` (the profiles' label). */
  kernelCodeSizes(): Map<string, number> {
    const sizes = new Map<string, number>();
    for (const [code, named] of this.kernels) for (const k of named.values()) sizes.set(`${k.name} {${k.key}}`, code.length);
    return sizes;
  }

  private ensurePass(): GPUComputePassEncoder {
    if (this.dev.fatal) throw this.dev.fatal;
    this.encoder ??= this.dev.gpu.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    return this.pass;
  }

  /** Under a profile, every dispatch gets its own pass whose start and end are timestamped. */
  private profiledPass(k: Kernel): GPUComputePassEncoder {
    const profile = this.profile!;
    if (this.pass) this.pass.end();
    this.encoder ??= this.dev.gpu.createCommandEncoder();
    this.pass = this.encoder.beginComputePass({ timestampWrites: profile.record(profile.bySpecialisation ? `${k.name} {${k.key}}` : k.name) });
    return this.pass;
  }

  private ensureEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    this.encoder ??= this.dev.gpu.createCommandEncoder();
    return this.encoder;
  }

  private writeUniforms(k: Kernel, u: Uniforms | undefined): number {
    const spec = k.uniform!;
    if (this.ringSlot >= this.ringSlots) this.flush();
    const base = this.ringSlot++ * this.slotBytes;
    const view = this.ringView;
    new Uint8Array(this.ringMirror, base, spec.size).fill(0);
    for (const f of spec.fields) {
      const v = u?.[f.name];
      if (v === undefined) throw new Error(`kernel ${k.name}: uniform '${f.name}' was not given`);
      const vals = typeof v === 'number' ? [v] : v;
      if (vals.length > f.count) throw new Error(`kernel ${k.name}: uniform '${f.name}' takes ${f.count} values, got ${vals.length}`);
      for (let i = 0; i < vals.length; i++) {
        const o = base + f.offset + 4 * i;
        if (f.scalar === 'f32') view.setFloat32(o, vals[i], true);
        else if (f.scalar === 'i32') view.setInt32(o, vals[i], true);
        else view.setUint32(o, vals[i] >>> 0, true);
      }
    }
    return base;
  }

  /**
   * Records one dispatch. `named` maps each storage binding's WGSL name to its buffer; a missing
   * or unknown name is an error. `groups` is the workgroup count per dimension.
   */
  dispatch(k: Kernel, named: Record<string, Bound>, uniforms: Uniforms | undefined, groups: readonly [number, number?, number?]): void {
    const buffers = this.byName(k, named);
    const maxBinding = this.bindingLimit;
    let key = String(k.id);
    for (let i = 0; i < buffers.length; i++) {
      const b = buffers[i];
      const s = k.storage[i];
      if (b.dtype && b.dtype !== s.elem) throw new Error(`kernel ${k.name}: buffer '${s.name}' holds ${s.elem}, got a ${b.dtype} tensor`);
      if (b.bytes > maxBinding) throw new Error(`kernel ${k.name}: buffer '${s.name}' of ${b.bytes} bytes exceeds the binding limit of ${maxBinding}`);
      const offset = b.offset ?? 0;
      if (offset % this.bindingAlignment !== 0) throw new Error(`kernel ${k.name}: buffer '${s.name}' bound at offset ${offset}, not a multiple of ${this.bindingAlignment}`);
      key += `|${bufferIds.get(b.buffer)}:${offset}:${b.bytes}`;
    }
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const maxGroups = this.dev.limits.maxComputeWorkgroupsPerDimension;
    if (gx > maxGroups || gy > maxGroups || gz > maxGroups) throw new Error(`kernel ${k.name}: grid ${gx}x${gy}x${gz} exceeds ${maxGroups} workgroups per dimension`);
    let bg = this.bindGroups.get(key);
    if (!bg) {
      const entries: GPUBindGroupEntry[] = buffers.map((b, i) => ({ binding: k.storage[i].binding, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: Math.max(4, Math.ceil(b.bytes / 4) * 4) } }));
      if (k.uniform) entries.push({ binding: k.uniform.binding, resource: { buffer: this.ring, offset: 0, size: k.uniform.size } });
      if (this.bindGroups.size >= BIND_GROUP_CACHE_MAX) this.bindGroups.clear();
      bg = this.dev.gpu.createBindGroup({ layout: k.layout, entries });
      this.bindGroups.set(key, bg);
    }
    const pass = this.profile ? this.profiledPass(k) : this.ensurePass();
    pass.setPipeline(k.pipeline);
    if (k.uniform) pass.setBindGroup(0, bg, [this.writeUniforms(k, uniforms)]);
    else pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(gx, gy, gz);
    for (const b of buffers) this.touched.add(b.buffer);
    if (++this.dispatches >= BATCH_DISPATCHES) this.flush();
  }

  /** The buffers of `named` in binding order; a missing or unknown name is an error. */
  private byName(k: Kernel, named: Record<string, Bound>): Bound[] {
    const out = k.storage.map((s) => {
      const b = named[s.name];
      if (!b) throw new Error(`kernel ${k.name}: buffer '${s.name}' was not given (it takes ${k.storage.map((t) => t.name).join(', ')})`);
      return b;
    });
    if (Object.keys(named).length !== out.length) {
      const unknown = Object.keys(named).filter((n) => !k.storage.some((s) => s.name === n));
      throw new Error(`kernel ${k.name}: no buffer named ${unknown.map((n) => `'${n}'`).join(', ')} (it takes ${k.storage.map((t) => t.name).join(', ')})`);
    }
    return out;
  }

  /** The largest storage binding: the adapter's maxStorageBufferBindingSize unless a test lowered it. */
  get bindingLimit(): number {
    return this.dev.limits.maxStorageBufferBindingSize;
  }

  /**
   * Lowers the binding limit (bytes, a multiple of 16) so that tests can make small tensors exceed
   * one binding and exercise the ops that split their work; null restores the adapter's limit.
   * Kernels and launchers read it through device().limits, so it holds for every op at once.
   */
  setBindingLimitForTesting(bytes: number | null): void {
    this.adapterBindingLimit ??= this.dev.limits.maxStorageBufferBindingSize;
    if (bytes !== null && !(Number.isInteger(bytes) && bytes >= 256 && bytes % 16 === 0)) throw new Error(`setBindingLimitForTesting: expects a multiple of 16 bytes >= 256, got ${bytes}`);
    this.dev.limits.maxStorageBufferBindingSize = Math.min(bytes ?? Infinity, this.adapterBindingLimit);
  }

  /** Zero-fills the first `bytes` of a buffer, in stream order. */
  clear(buffer: GPUBuffer, bytes: number): void {
    const n = Math.ceil(bytes / 4) * 4;
    if (n === 0) return;
    this.ensureEncoder().clearBuffer(buffer, 0, n);
    this.touched.add(buffer);
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    this.ensureEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.touched.add(src).add(dst);
  }

  upload(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    // writeBuffer is ordered before commands not yet submitted: submit those that touch `buffer`.
    if (this.touched.has(buffer)) this.flush();
    const bytes = data.byteLength;
    if (bytes % 4 === 0) this.dev.gpu.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, bytes);
    else {
      const padded = new Uint8Array(Math.ceil(bytes / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
      this.dev.gpu.queue.writeBuffer(buffer, offset, padded);
    }
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (this.dev.fatal) throw this.dev.fatal;
    if (!this.encoder) return;
    if (this.pass) this.pass.end();
    this.profile?.resolve(this.encoder);
    const cmd = this.encoder.finish();
    if (this.ringSlot > 0) this.dev.gpu.queue.writeBuffer(this.ring, 0, this.ringMirror, 0, this.ringSlot * this.slotBytes);
    this.dev.gpu.queue.submit([cmd]);
    this.submits++;
    this.encoder = null;
    this.pass = null;
    this.dispatches = 0;
    this.ringSlot = 0;
    this.touched.clear();
    this.pool.submitted();
  }

  /** Copies `bytes` from `buffer` back to the CPU. */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const n = Math.ceil(bytes / 4) * 4;
    if (n === 0) return new ArrayBuffer(0);
    const size = sizeClass(n);
    const stage = this.staging.get(size)?.pop() ?? this.dev.gpu.createBuffer({ size, usage: BufferUsageFlags.MAP_READ | BufferUsageFlags.COPY_DST });
    this.ensureEncoder().copyBufferToBuffer(buffer, offset, stage, 0, n);
    this.flush();
    try {
      await stage.mapAsync(MAP_READ_MODE, 0, n);
    } catch (e) {
      throw this.dev.fatal ?? e;
    }
    if (this.dev.fatal) throw this.dev.fatal;
    const out = stage.getMappedRange(0, n).slice(0, bytes);
    stage.unmap();
    let list = this.staging.get(size);
    if (!list) this.staging.set(size, (list = []));
    list.push(stage);
    return out;
  }

  /** Resolves when the GPU has finished all submitted work (for timing). */
  async sync(): Promise<void> {
    this.flush();
    await this.dev.gpu.queue.onSubmittedWorkDone();
    if (this.dev.fatal) throw this.dev.fatal;
  }

  /**
   * Times every dispatch with timestamp queries until the returned stop() resolves to the GPU time
   * per kernel name, or per name and specialisation key (each dispatch runs in its own pass
   * meanwhile, so totals include that cost).
   */
  startProfile({ bySpecialisation = false } = {}): { stop: () => Promise<KernelTime[]> } {
    if (!this.dev.gpu.features.has('timestamp-query')) throw new Error("kernel profiling needs the adapter feature 'timestamp-query'");
    if (this.profile) throw new Error('a kernel profile is already running');
    this.flush();
    const profile = (this.profile = new KernelProfiler(this.dev.gpu, BATCH_DISPATCHES, bySpecialisation));
    return {
      stop: async () => {
        this.flush();
        this.profile = null;
        return profile.collect();
      },
    };
  }

  /** Frees idle pool buffers and the bind groups that referenced them. */
  trim(): void {
    this.flush();
    this.bindGroups.clear();
    this.pool.trim();
    for (const list of this.staging.values()) for (const b of list) b.destroy();
    this.staging.clear();
  }
}

/** 32-bit FNV-1a of a string, in hex: a short, stable name for one generated kernel. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

let rt: Runtime | null = null;

/** The runtime of the active WebGPU device. */
export function runtime(): Runtime {
  const d = device();
  if (!rt || rt.dev !== d) rt = new Runtime(d);
  return rt;
}

export type { Runtime };

/** Splits `n` workgroups over x and y when n exceeds the per-dimension limit. */
export function grid1(n: number): [number, number] {
  const max = runtime().dev.limits.maxComputeWorkgroupsPerDimension;
  if (n <= max) return [n, 1];
  const y = Math.ceil(n / max);
  return [Math.ceil(n / y), y];
}

export { LINEAR_WG } from './wgsl.js';
