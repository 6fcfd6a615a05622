// Module: a tree of layers holding named parameters and buffers, as torch.nn.Module. Names are
// PyTorch's dotted paths in registration order, so state dicts move between this and PyTorch.
//
//   class Block extends Module {
//     conv = new Conv2d(3, 8, 3);                        // a Module field: registered as 'conv'
//     scale = parameter(ones([8]));                      // a parameter(...) field: registered
//     constructor() { super(); this.registerBuffer('running', zeros([8])); }  // buffers: explicit
//   }
// Plain tensor fields are not registered (as in torch); a field declared without a value is only
// registered once a Module or parameter is assigned to it.

import { check, fmtShape } from '../kernels/errors.js';
import { keep, Tensor } from '../kernels/tensor.js';
import '../autograd/tape.js';
import { copyInto } from './init.js';

const PARAMETERS = new WeakSet<Tensor>();

/** A trainable tensor: requires grad and is registered as a parameter when assigned to a module field. */
export type Parameter = Tensor;

/** Marks t as a parameter (requiresGrad, exempt from scope disposal); returns it. */
export function parameter(t: Tensor): Parameter {
  check(t.dtype === 'f32', 'parameter', `needs an f32 tensor, got ${t.dtype} ${fmtShape(t.shape)}`);
  PARAMETERS.add(t);
  t.requiresGrad = true;
  return keep(t);
}

export const isParameter = (v: unknown): v is Parameter => v instanceof Tensor && PARAMETERS.has(v);

/** name → tensor in torch's state_dict() order. */
export type StateDict = Map<string, Tensor>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** A state dict that does not fit the model; the model was left unchanged. */
export class StateDictError extends Error {
  constructor(
    readonly moduleName: string,
    readonly missingKeys: string[],
    readonly unexpectedKeys: string[],
    readonly mismatches: string[],
  ) {
    const quote = (ks: string[]) => ks.map((k) => `"${k}"`).join(', ');
    const lines = [
      ...(missingKeys.length ? [`Missing key(s) in state_dict: ${quote(missingKeys)}.`] : []),
      ...(unexpectedKeys.length ? [`Unexpected key(s) in state_dict: ${quote(unexpectedKeys)}.`] : []),
      ...mismatches,
    ];
    super(`Error(s) in loading state_dict for ${moduleName}:\n\t${lines.join('\n\t')}`);
    this.name = 'StateDictError';
  }
}

const describe = (v: unknown): string => (v instanceof Tensor ? `a tensor ${fmtShape(v.shape)}` : v instanceof Module ? v.constructor.name : typeof v);

export abstract class Module {
  training = true;
  // torch's _parameters, _buffers and _modules: insertion-ordered, null entries are skipped
  private readonly paramSlots = new Map<string, Parameter | null>();
  private readonly bufferSlots = new Map<string, Tensor | null>();
  private readonly nonPersistent = new Set<string>();
  private readonly moduleSlots = new Map<string, Module | null>();

  constructor() {
    // Assigning a field registers it, as torch's __setattr__ does: plain assignments and class
    // field definitions both reach [[DefineOwnProperty]] on the instance, so one trap sees them.
    return new Proxy(this, {
      defineProperty: (target, key, desc) => {
        if (typeof key === 'string' && 'value' in desc) target.track(key, desc.value);
        return Reflect.defineProperty(target, key, desc);
      },
    });
  }

  private track(name: string, value: unknown): void {
    if (value instanceof Module || isParameter(value)) {
      check(!name.includes('.'), this.constructor.name, `name '${name}' must not contain '.'`);
      // a name moves between kinds, but keeps its position when it stays one kind (as a dict key)
      this.bufferSlots.delete(name);
      this.nonPersistent.delete(name);
      if (value instanceof Module) {
        this.paramSlots.delete(name);
        this.moduleSlots.set(name, value);
      } else {
        this.moduleSlots.delete(name);
        this.paramSlots.set(name, value);
      }
    } else if (this.paramSlots.has(name)) {
      check(value === null, this.constructor.name, () => `cannot assign ${describe(value)} to parameter '${name}' (parameter(t) or null expected)`);
      this.paramSlots.set(name, null);
    } else if (this.moduleSlots.has(name)) {
      check(value === null, this.constructor.name, () => `cannot assign ${describe(value)} to submodule '${name}' (a Module or null expected)`);
      this.moduleSlots.set(name, null);
    } else if (this.bufferSlots.has(name)) {
      check(value === null || value instanceof Tensor, this.constructor.name, () => `cannot assign ${describe(value)} to buffer '${name}' (a Tensor or null expected)`);
      this.bufferSlots.set(name, value && keep(value));
    }
  }

  private assign(name: string, value: unknown): void {
    (this as unknown as Record<string, unknown>)[name] = value;
  }

  /** Registers t (marked as a parameter) or an absent parameter (null) under `name`. */
  registerParameter(name: string, t: Tensor | null): void {
    if (t) parameter(t);
    else {
      check(!this.moduleSlots.has(name) && !this.bufferSlots.has(name), this.constructor.name, `'${name}' is already registered as a submodule or buffer`);
      this.paramSlots.set(name, null);
    }
    this.assign(name, t);
  }

  /** Registers a buffer: state that is not trained; it is saved in stateDict() unless not persistent. */
  registerBuffer(name: string, t: Tensor | null, { persistent = true } = {}): void {
    check(!name.includes('.'), this.constructor.name, `buffer name '${name}' must not contain '.'`);
    check(!this.paramSlots.has(name) && !this.moduleSlots.has(name), this.constructor.name, `'${name}' is already registered as a parameter or submodule`);
    this.bufferSlots.set(name, t && keep(t));
    if (persistent) this.nonPersistent.delete(name);
    else this.nonPersistent.add(name);
    this.assign(name, t);
  }

  registerModule(name: string, m: Module | null): void {
    if (!m) {
      check(!this.paramSlots.has(name) && !this.bufferSlots.has(name), this.constructor.name, `'${name}' is already registered as a parameter or buffer`);
      this.moduleSlots.set(name, null);
    }
    this.assign(name, m);
  }

  *namedChildren(): Generator<[string, Module]> {
    for (const [name, m] of this.moduleSlots) if (m) yield [name, m];
  }

  children(): Module[] {
    return [...this.namedChildren()].map(([, m]) => m);
  }

  /** This module and every descendant, depth first in registration order (each module once). */
  *namedModules(prefix = '', seen = new Set<Module>()): Generator<[string, Module]> {
    if (seen.has(this)) return;
    seen.add(this);
    yield [prefix, this];
    for (const [name, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${name}` : name, seen);
  }

  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }

  private *namedMembers(kind: 'paramSlots' | 'bufferSlots'): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of m[kind]) {
        if (!t || seen.has(t)) continue;
        seen.add(t);
        yield [prefix ? `${prefix}.${name}` : name, t];
      }
    }
  }

  /** Parameters with their dotted names (each tensor once), as torch's named_parameters(). */
  namedParameters(): [string, Parameter][] {
    return [...this.namedMembers('paramSlots')];
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(): [string, Tensor][] {
    return [...this.namedMembers('bufferSlots')];
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** Sets training mode here and below (BatchNorm uses batch statistics, Dropout drops). */
  train(mode = true): this {
    this.training = mode;
    for (const c of this.children()) c.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /**
   * Parameters and persistent buffers by dotted name, in torch's state_dict() order: a module's own
   * parameters, then its buffers, then each child's entries. The tensors are the model's own (not
   * copies). BatchNorm's num_batches_tracked is an i32 scalar here (int64 in torch).
   */
  stateDict(prefix = '', into: StateDict = new Map()): StateDict {
    for (const [name, p] of this.paramSlots) if (p) into.set(prefix + name, p);
    for (const [name, b] of this.bufferSlots) if (b && !this.nonPersistent.has(name)) into.set(prefix + name, b);
    for (const [name, m] of this.namedChildren()) m.stateDict(`${prefix}${name}.`, into);
    return into;
  }

  /**
   * Copies a state dict's tensors into this model's parameters and buffers. Everything is checked
   * before anything is copied, so on any error (missing or unexpected keys when strict, a shape
   * mismatch, a GPU source for a CPU model) the model is unchanged and a StateDictError names them.
   */
  loadStateDict(source: StateDict | Record<string, Tensor>, { strict = true } = {}): LoadResult {
    const src = source instanceof Map ? source : new Map(Object.entries(source));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !src.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !own.has(k));
    const mismatches: string[] = [];
    for (const [key, dst] of own) {
      const s = src.get(key);
      if (!s) continue;
      if (s.isDisposed) mismatches.push(`the tensor for ${key} was disposed.`);
      else if (s.shape.join() !== dst.shape.join()) {
        mismatches.push(`size mismatch for ${key}: copying a param with shape ${fmtShape(s.shape)} from checkpoint, the shape in current model is ${fmtShape(dst.shape)}.`);
      } else if (s.device === 'webgpu' && dst.device === 'cpu') mismatches.push(`${key} lives on WebGPU but the model on the CPU (move the state dict with toDevice).`);
    }
    if (mismatches.length || (strict && (missingKeys.length || unexpectedKeys.length))) {
      throw new StateDictError(this.constructor.name, strict ? missingKeys : [], strict ? unexpectedKeys : [], mismatches);
    }
    for (const [key, dst] of own) {
      const s = src.get(key);
      if (s) copyInto(dst, s, `loadStateDict(${key})`);
    }
    return { missingKeys, unexpectedKeys };
  }
}

/** A list of submodules named "0", "1", ... (torch.nn.ModuleList); it has no forward of its own. */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  push(m: M): this {
    this.registerModule(String(this.length), m);
    return this;
  }

  get length(): number {
    return this.children().length;
  }

  at(i: number): M {
    const m = this.children().at(i);
    check(m, this.constructor.name, `index ${i} is out of range for ${this.length} modules`);
    return m as M;
  }

  [Symbol.iterator](): Iterator<M> {
    return (this.children() as M[])[Symbol.iterator]();
  }
}

/** A module mapping one tensor to one tensor: what Sequential chains. */
export type Layer = Module & { forward(x: Tensor): Tensor };

/**
 * A ModuleList of layers applied in order (torch.nn.Sequential): children named "0", "1", ..., so
 * its state-dict names are torch's.
 */
export class Sequential extends ModuleList<Layer> {
  constructor(...layers: Layer[]) {
    super(layers);
  }

  forward(x: Tensor): Tensor {
    return [...this].reduce((y, l) => l.forward(y), x);
  }
}
