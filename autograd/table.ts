// The op table: one registry pairing each differentiable op's forward (raw kernels) with its
// backward rule. autograd/ops.ts registers the core ops, autograd/nn-ops.ts and conv-ops.ts the network layers.
//
// Memory: what a forward keeps for its backward goes through ctx.save and belongs to the graph
// node: the tape frees it once the node's backward has run (unless the graph is retained), and
// disposing the output frees it too, so a graph that is never backpropagated leaks nothing either;
// when nothing is recorded, save() frees it at once. A forward disposes its other temporaries itself
// (test/autograd/tape.test.ts checks every op of the table); a backward rule's temporaries are
// freed by the tape, which runs each rule in a scope (autograd/tape.ts).

import { Tensor } from '../kernels/tensor.js';
import { isGradEnabled, record } from './tape.js';

/**
 * What a forward keeps for its backward: tensors it created (conv columns, batch-norm statistics,
 * max-pool indices, a fused kernel's gradient), which the graph node owns and frees, beside plain
 * values (geometry). Never put an input, the output or a module's buffer here: they are not the
 * node's to free (the backward reads inputs and output from its context).
 */
export type Saved = Record<string, unknown>;

export interface ForwardContext<S extends Saved> {
  /** True when the tape records this call (grad is on and an input requires grad): only then keep state for the backward. */
  readonly recording: boolean;
  /** Keeps `s` for the backward; when not recording, frees its tensors at once. */
  save(s: S): void;
}

export interface OpContext<A, S extends Saved = Saved> {
  inputs: Tensor[];
  out: Tensor;
  attrs: A;
  /** What the forward saved (an empty object when it saved nothing). */
  saved: S;
}

export interface OpDef<A, S extends Saved = Saved> {
  forward(inputs: Tensor[], attrs: A, ctx: ForwardContext<S>): Tensor;
  /** Gradients for each input (null where none flows), given the upstream gradient g. */
  backward(g: Tensor, ctx: OpContext<A, S>): (Tensor | null)[];
}

export const OP_TABLE = new Map<string, OpDef<never, never>>();
/** The file group that registered each op ('core', 'nn', 'conv'): each group's tests check that all of its ops have a gradient check. */
export const OP_GROUPS = new Map<string, string>();

/** Frees every tensor among the saved values (one level of arrays included). */
function disposeSaved(s: Saved): void {
  for (const v of Object.values(s)) {
    if (v instanceof Tensor) v.dispose();
    else if (Array.isArray(v)) for (const t of v) if (t instanceof Tensor) t.dispose();
  }
}

/** Registers an op; returns a function that applies it and records it on the tape. */
export function defineOp<A, S extends Saved = Saved>(name: string, def: OpDef<A, S>, group = 'core'): (inputs: Tensor[], attrs: A) => Tensor {
  if (OP_TABLE.has(name)) throw new Error(`op '${name}' is defined twice`);
  OP_TABLE.set(name, def as unknown as OpDef<never, never>);
  OP_GROUPS.set(name, group);
  return (inputs, attrs) => {
    const recording = isGradEnabled() && inputs.some((t) => t.requiresGrad);
    let saved: S | undefined;
    const out = def.forward(inputs, attrs, {
      recording,
      save: (s) => {
        if (recording) saved = s;
        else disposeSaved(s);
      },
    });
    if (!recording) return out;
    let state: S | undefined = saved;
    let freed = false;
    const release = (): void => {
      if (state) disposeSaved(state);
      state = undefined;
      freed = true;
    };
    return record(name, inputs, out, (g) => {
      if (freed && saved) {
        throw new Error(`backward of ${name}: the state its forward saved was freed (its output was disposed, or an earlier backward() freed the graph; pass { retainGraph: true } to backpropagate twice)`);
      }
      return def.backward(g, { inputs, out, attrs, saved: state ?? ({} as S) });
    }, release);
  };
}
