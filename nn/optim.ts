// Optimizers as torch.optim has them: parameter groups with their own hyper-parameters, state kept
// per parameter name, and a state dict that resumes a run exactly. step() records one fused kernel
// per parameter (kernels/optim.ts) that updates the parameter and its state in place: no readback,
// no new buffers after the first step.

import { zeros } from '../kernels/creation.js';
import { check, fmtShape, OpError } from '../kernels/errors.js';
import { adamwUpdate, sgdUpdate } from '../kernels/optim.js';
import { keep, Tensor } from '../kernels/tensor.js';
import '../autograd/tape.js';
import { copyInto } from './init.js';

export type NamedTensor = [string, Tensor];
type ParamSpec = Tensor | NamedTensor;
type Hyper = Record<string, number | boolean | readonly number[]>;

/** A group of parameters with its own options; `lrScale` multiplies the lr given to setLr(). */
export type ParamGroupSpec<O> = O & { params: Iterable<ParamSpec>; lrScale?: number };

/** Parameters (plain, or [name, tensor] pairs as Module.namedParameters() gives) or param groups. */
export type Params<O> = Iterable<ParamSpec> | Iterable<ParamGroupSpec<O>>;

export type ParamGroup<H extends Hyper> = H & { params: NamedTensor[]; lrScale: number };

/** The JSON-safe part of an optimizer's state. */
export interface OptimizerScalars {
  type: string;
  /** Update count of each parameter that has one (AdamW's `step`). */
  steps: Record<string, number>;
  /** Each group's hyper-parameters and the names of its parameters. */
  paramGroups: (Record<string, unknown> & { params: string[] })[];
}

export interface OptimizerStateDict {
  /** Per-parameter buffers keyed `state.<param name>.<buffer>`: the optimizer's own tensors, not copies. */
  tensors: Map<string, Tensor>;
  scalars: OptimizerScalars;
}

/** The entries of o that are not undefined (so `{lr: undefined}` keeps the default). */
const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

const isGroupSpec = <O>(x: ParamSpec | ParamGroupSpec<O>): x is ParamGroupSpec<O> => !(x instanceof Tensor) && !Array.isArray(x);

/**
 * Two parameter groups: weight decay for the rest, none for those `exempt` picks (by default every
 * tensor of rank <= 1: biases and BatchNorm affine parameters, "no bias decay" of He et al., CVPR 2019).
 */
export function weightDecayGroups(
  named: Iterable<NamedTensor>,
  weightDecay: number,
  exempt: (name: string, t: Tensor) => boolean = (_name, t) => t.rank <= 1,
): [{ params: NamedTensor[]; weightDecay: number }, { params: NamedTensor[]; weightDecay: number }] {
  const all = [...named];
  return [
    { params: all.filter(([n, t]) => !exempt(n, t)), weightDecay },
    { params: all.filter(([n, t]) => exempt(n, t)), weightDecay: 0 },
  ];
}

export abstract class Optimizer<H extends Hyper & { lr: number }, O extends Partial<H> = Partial<H>> {
  readonly paramGroups: ParamGroup<H>[] = [];
  /** name → buffer name → tensor */
  protected readonly buffers = new Map<string, Map<string, Tensor>>();
  protected readonly steps = new Map<string, number>();
  abstract readonly type: string;
  /** Whether each parameter's state carries an update count (AdamW's bias corrections need it). */
  protected abstract readonly countsSteps: boolean;

  constructor(params: Params<O>, readonly defaults: H) {
    const op = new.target.name;
    const list = [...params] as (ParamSpec | ParamGroupSpec<O>)[];
    check(list.length > 0, op, 'got an empty parameter list');
    const grouped = list.every(isGroupSpec);
    check(grouped || !list.some(isGroupSpec), op, 'mixes parameters and parameter groups');
    const specs = grouped ? list : [{ params: list } as unknown as ParamGroupSpec<O>];
    const seenTensors = new Set<Tensor>();
    const seenNames = new Set<string>();
    let index = 0;
    for (const spec of specs) {
      const { params: members, lrScale = 1, ...opts } = spec;
      const named: NamedTensor[] = [];
      for (const m of members) {
        // unnamed parameters are numbered across groups, as in torch's optimizer state dict
        const [name, t] = m instanceof Tensor ? [String(index), m] : m;
        index++;
        check(t instanceof Tensor && !t.isDisposed, op, `parameter '${name}' is not a live tensor`);
        check(t.dtype === 'f32', op, `parameter '${name}' must be f32, got ${t.dtype} ${fmtShape(t.shape)}`);
        check(t.requiresGrad && !t.node, op, `parameter '${name}' ${fmtShape(t.shape)} is not a leaf that requires grad`);
        check(!seenTensors.has(t), op, `parameter '${name}' appears in more than one place`);
        check(!seenNames.has(name), op, `two parameters are named '${name}'`);
        seenTensors.add(t);
        seenNames.add(name);
        named.push([name, t]);
      }
      const group = { ...this.defaults, lr: this.defaults.lr * lrScale, ...defined(opts), params: named, lrScale } as ParamGroup<H>;
      this.validate(group);
      this.paramGroups.push(group);
    }
  }

  /** Throws when a group's hyper-parameters are out of range. */
  protected abstract validate(group: ParamGroup<H>): void;

  /** Updates one parameter with its gradient. */
  protected abstract update(group: ParamGroup<H>, name: string, param: Tensor, grad: Tensor): void;

  /** The buffers a parameter with state must have under the group's options. */
  protected abstract bufferNames(group: ParamGroup<H>): string[];

  /** Updates every parameter that has a gradient (the others are skipped, as in torch). */
  step(): void {
    for (const group of this.paramGroups) {
      for (const [name, p] of group.params) if (p.grad) this.update(group, name, p, p.grad);
    }
  }

  /** Drops every parameter's gradient (torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const group of this.paramGroups) for (const [, p] of group.params) p.zeroGrad();
  }

  /** Sets each group's learning rate to lr × its lrScale (what a schedule calls every epoch or iteration). */
  setLr(lr: number): void {
    check(Number.isFinite(lr) && lr >= 0, this.type, `invalid learning rate ${lr}`);
    for (const g of this.paramGroups) g.lr = lr * g.lrScale;
  }

  protected buffer(name: string, key: string, like: Tensor, make: () => Tensor): Tensor {
    let slots = this.buffers.get(name);
    if (!slots) this.buffers.set(name, (slots = new Map()));
    let t = slots.get(key);
    if (!t) slots.set(key, (t = keep(make())));
    check(t.shape.join() === like.shape.join(), this.type, () => `state ${name}.${key} has shape ${fmtShape(t.shape)}, the parameter ${fmtShape(like.shape)}`);
    return t;
  }

  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, Tensor>();
    for (const group of this.paramGroups) {
      for (const [name] of group.params) for (const [key, t] of this.buffers.get(name) ?? []) tensors.set(`state.${name}.${key}`, t);
    }
    const paramGroups = this.paramGroups.map(({ params, ...hyper }) => ({ ...structuredClone(hyper), params: params.map(([n]) => n) }));
    return { tensors, scalars: { type: this.type, steps: Object.fromEntries(this.steps), paramGroups } };
  }

  /**
   * Restores a state dict saved by the same kind of optimizer over parameters of the same names and
   * shapes; its tensors are copied. Everything is checked first: on error nothing has changed.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const op = `${this.type}.loadStateDict`;
    const { scalars } = sd;
    check(scalars.type === this.type, op, `the state dict is from ${scalars.type}`);
    check(scalars.paramGroups.length === this.paramGroups.length, op, `the state dict has ${scalars.paramGroups.length} parameter groups, this optimizer ${this.paramGroups.length}`);
    const groups = this.paramGroups.map((own, i) => {
      const saved = scalars.paramGroups[i];
      const ownNames = own.params.map(([n]) => n);
      if (saved.params.join('\n') !== ownNames.join('\n')) {
        const missing = ownNames.filter((n) => !saved.params.includes(n));
        const unexpected = saved.params.filter((n) => !ownNames.includes(n));
        throw new OpError(op, `group ${i} holds other parameters: missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(unexpected)}${missing.length + unexpected.length ? '' : ' (order differs)'}`);
      }
      const { params: _names, ...hyper } = saved;
      const { params, ...ownHyper } = own;
      const unknown = Object.keys(hyper).filter((k) => !(k in ownHyper));
      check(!unknown.length, op, `group ${i}: unknown options ${JSON.stringify(unknown)}`);
      for (const [k, v] of Object.entries(ownHyper)) {
        const s = hyper[k];
        const same = Array.isArray(v) ? Array.isArray(s) && s.length === v.length && s.every((x) => typeof x === 'number') : typeof s === typeof v;
        check(same, op, `group ${i}: '${k}' is ${JSON.stringify(s)}, expected a value like ${JSON.stringify(v)}`);
      }
      const merged = { ...hyper, params } as ParamGroup<H>;
      this.validate(merged);
      return merged;
    });
    const owner = new Map<string, { group: ParamGroup<H>; param: Tensor }>();
    for (const group of groups) for (const [name, param] of group.params) owner.set(name, { group, param });
    const incoming = new Map<string, Map<string, Tensor>>();
    for (const [key, t] of sd.tensors) {
      const dot = key.lastIndexOf('.');
      const name = key.slice('state.'.length, dot);
      const target = key.startsWith('state.') && dot > 'state.'.length ? owner.get(name) : undefined;
      const bufferName = key.slice(dot + 1);
      check(target && this.bufferNames(target.group).includes(bufferName), op, `unexpected state '${key}'`);
      check(!t.isDisposed && t.dtype === 'f32' && t.shape.join() === target.param.shape.join(), op, () =>
        `state '${key}' must be a live f32 tensor of shape ${fmtShape(target.param.shape)}, got ${t.isDisposed ? 'a disposed tensor' : `${t.dtype} ${fmtShape(t.shape)}`}`);
      check(!(t.device === 'webgpu' && target.param.device === 'cpu'), op, `state '${key}' lives on WebGPU but the parameter on the CPU (move it with toDevice)`);
      let slots = incoming.get(name);
      if (!slots) incoming.set(name, (slots = new Map()));
      slots.set(bufferName, t);
    }
    for (const [name, steps] of Object.entries(scalars.steps)) {
      check(owner.has(name), op, `step count for unknown parameter '${name}'`);
      check(Number.isInteger(steps) && steps >= 1, op, `step count of '${name}' is ${steps}`);
    }
    for (const [name, { group }] of owner) {
      const have = [...(incoming.get(name)?.keys() ?? [])].sort();
      const counted = name in scalars.steps;
      if (!have.length && !counted) continue; // no state yet
      const need = this.bufferNames(group).sort();
      check(have.join() === need.join() && counted === this.countsSteps, op, () =>
        `parameter '${name}' has state [${have}]${counted ? ' and a step count' : ''}, expected [${need}]${this.countsSteps ? ' and a step count' : ''}`);
    }
    // checked: now replace the state
    this.disposeState();
    groups.forEach((g, i) => Object.assign(this.paramGroups[i], g));
    for (const [name, slots] of incoming) {
      const param = owner.get(name)!.param;
      for (const [key, src] of slots) {
        this.buffer(name, key, param, () => {
          const t = Tensor.empty(param.shape, 'f32', param.device, op);
          copyInto(t, src, `${op}(state.${name}.${key})`);
          return t;
        });
      }
    }
    for (const [name, steps] of Object.entries(scalars.steps)) this.steps.set(name, steps);
  }

  private disposeState(): void {
    for (const slots of this.buffers.values()) for (const t of slots.values()) t.dispose();
    this.buffers.clear();
    this.steps.clear();
  }

  /** Frees the optimizer's state buffers. */
  dispose(): void {
    this.disposeState();
  }
}

// ---------------------------------------------------------------- SGD

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

type SGDGroupHyper = { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean };

/** torch.optim.SGD (defaults as torch: lr 1e-3, no momentum, no decay); weight decay is added to the gradient. */
export class SGD extends Optimizer<SGDGroupHyper, SGDOptions> {
  readonly type = 'SGD';
  protected readonly countsSteps = false;

  constructor(params: Params<SGDOptions>, opts: SGDOptions = {}) {
    super(params, { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...defined(opts) });
  }

  protected validate(g: ParamGroup<SGDGroupHyper>): void {
    check(g.lr >= 0 && g.momentum >= 0 && g.weightDecay >= 0, this.type, `invalid lr ${g.lr}, momentum ${g.momentum} or weight decay ${g.weightDecay}`);
    check(!g.nesterov || (g.momentum > 0 && g.dampening === 0), this.type, 'Nesterov momentum requires a momentum and zero dampening');
  }

  protected bufferNames(g: ParamGroup<SGDGroupHyper>): string[] {
    return g.momentum !== 0 ? ['momentum_buffer'] : [];
  }

  protected update(g: ParamGroup<SGDGroupHyper>, name: string, p: Tensor, grad: Tensor): void {
    const first = g.momentum !== 0 && !this.buffers.get(name)?.has('momentum_buffer');
    const buf = g.momentum !== 0 ? this.buffer(name, 'momentum_buffer', p, () => Tensor.empty(p.shape, 'f32', p.device, 'SGD')) : null;
    sgdUpdate(p, grad, buf, g, first);
  }
}

// ---------------------------------------------------------------- AdamW

export interface AdamWOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

type AdamWGroupHyper = { lr: number; betas: readonly [number, number]; eps: number; weightDecay: number; amsgrad: boolean };

/** torch.optim.AdamW (defaults as torch: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2). */
export class AdamW extends Optimizer<AdamWGroupHyper, AdamWOptions> {
  readonly type = 'AdamW';
  protected readonly countsSteps = true;

  constructor(params: Params<AdamWOptions>, opts: AdamWOptions = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, ...defined(opts) });
  }

  protected validate(g: ParamGroup<AdamWGroupHyper>): void {
    const [b1, b2] = g.betas;
    check(g.lr >= 0 && g.eps >= 0 && g.weightDecay >= 0, this.type, `invalid lr ${g.lr}, eps ${g.eps} or weight decay ${g.weightDecay}`);
    check(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, this.type, `betas must lie in [0, 1), got [${g.betas}]`);
  }

  protected bufferNames(g: ParamGroup<AdamWGroupHyper>): string[] {
    return g.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
  }

  protected update(g: ParamGroup<AdamWGroupHyper>, name: string, p: Tensor, grad: Tensor): void {
    const zero = () => zeros(p.shape, { device: p.device });
    const state = {
      expAvg: this.buffer(name, 'exp_avg', p, zero),
      expAvgSq: this.buffer(name, 'exp_avg_sq', p, zero),
      maxExpAvgSq: g.amsgrad ? this.buffer(name, 'max_exp_avg_sq', p, zero) : null,
    };
    const step = (this.steps.get(name) ?? 0) + 1;
    this.steps.set(name, step);
    adamwUpdate(p, grad, state, { lr: g.lr, beta1: g.betas[0], beta2: g.betas[1], eps: g.eps, weightDecay: g.weightDecay }, step);
  }
}
