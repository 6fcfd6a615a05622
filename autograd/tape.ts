// Reverse-mode autograd (micrograd's engine, over tensors): every differentiable op records a node
// {inputs, backward} on its output when an input requires grad; backward() walks the graph in
// reverse topological order and accumulates gradients. Backward rules live in autograd/ops.ts.

import { binary } from '../kernels/elementwise.js';
import { check, fmtShape } from '../kernels/errors.js';
import { clone, ones } from '../kernels/creation.js';
import { keep, scope, Tensor, type GradNode } from '../kernels/tensor.js';

let gradEnabled = true;

export const isGradEnabled = (): boolean => gradEnabled;

/** Runs fn without recording the graph (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Attaches a backward rule to `out` when grad is on and an input requires grad. `release` frees the
 * state the rule needs (see defineOp in autograd/table.ts); it is called after the node's backward
 * (unless the graph is retained) or when `out` is disposed, whichever comes first.
 */
export function record(name: string, inputs: Tensor[], out: Tensor, backward: GradNode['backward'], release?: () => void): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { name, inputs, backward, release };
  } else release?.();
  return out;
}

/** What a node becomes once a backward without retainGraph has run through it. */
function freedNode(name: string): GradNode {
  return {
    name,
    inputs: [],
    backward: () => {
      throw new Error(`backward: the graph through ${name} was freed by an earlier backward(); pass { retainGraph: true } to the first backward to backpropagate through it again`);
    },
  };
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // iterative DFS: graphs of deep networks exceed the call stack
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const i of t.node?.inputs ?? []) if (i.requiresGrad && !seen.has(i)) stack.push([i, false]);
  }
  return order;
}

export interface BackwardOptions {
  /** Keep the graph so backward can run again through it. */
  retainGraph?: boolean;
}

/**
 * Accumulates d(root)/d(leaf) into leaf.grad for every leaf that requires grad. `grad` defaults to
 * ones (root must then be a scalar, as in PyTorch).
 */
export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  check(root.requiresGrad, 'backward', `tensor ${fmtShape(root.shape)} does not require grad (no input of its graph has requiresGrad)`);
  if (!grad) check(root.size === 1, 'backward', `needs a gradient argument for a non-scalar output of shape ${fmtShape(root.shape)}`);
  else check(grad.shape.join() === root.shape.join(), 'backward', `gradient shape ${fmtShape(grad.shape)} does not match output ${fmtShape(root.shape)}`);
  const order = topoOrder(root);
  // every tensor in `grads` is owned by this loop: rules may return `g` itself or one tensor for
  // two inputs, so such results are cloned before they are stored
  const grads = new Map<Tensor, Tensor>();
  try {
    noGrad(() => {
      grads.set(root, grad ? clone(grad) : ones(root.shape, { device: root.device }));
      for (let i = order.length - 1; i >= 0; i--) {
        const t = order[i];
        const node = t.node;
        const g = grads.get(t);
        grads.delete(t);
        if (!node) {
          if (!g) continue;
          // a leaf: accumulate into .grad, which outlives any scope
          if (t.grad) {
            const sum = binary('add', t.grad, g);
            t.grad.dispose();
            g.dispose();
            t.grad = keep(sum);
          } else t.grad = keep(g);
          continue;
        }
        if (g) {
          // a scope: a rule's temporaries (reshape views, masks, zeros) go, its results stay
          let inGrads: (Tensor | null)[];
          try {
            inGrads = scope(() => node.backward(g));
          } catch (e) {
            g.dispose();
            throw e;
          }
          const used = new Set<Tensor>([g]);
          node.inputs.forEach((inp, k) => {
            let ig = inGrads[k];
            if (!ig) return;
            if (used.has(ig)) ig = clone(ig);
            used.add(ig);
            if (!inp.requiresGrad) return ig.dispose();
            check(ig.shape.join() === inp.shape.join(), `backward of ${node.name}`, `gradient shape ${fmtShape(ig.shape)} for an input of shape ${fmtShape(inp.shape)}`);
            const prev = grads.get(inp);
            if (prev) {
              grads.set(inp, binary('add', prev, ig));
              prev.dispose();
              ig.dispose();
            } else grads.set(inp, ig);
          });
          for (let k = node.inputs.length; k < inGrads.length; k++) if (inGrads[k] && !used.has(inGrads[k]!)) inGrads[k]!.dispose();
          g.dispose();
        }
        // the saved state is freed once the node's backward has run; a retained graph keeps it
        if (!opts.retainGraph) {
          node.release?.();
          t.node = freedNode(node.name);
        }
      }
    });
  } finally {
    // an error part-way (a bad rule, a freed graph) must not leak the pending gradients
    for (const g of grads.values()) g.dispose();
  }
}

declare module '../kernels/tensor.js' {
  interface Tensor {
    /** Backpropagates from this tensor (a scalar loss, unless `grad` is given). */
    backward(grad?: Tensor, opts?: BackwardOptions): void;
    /** Marks this tensor as a leaf that collects gradients; returns it. */
    requireGrad(on?: boolean): this;
    /** Drops the accumulated gradient. */
    zeroGrad(): void;
  }
}

Tensor.prototype.backward = function (this: Tensor, grad?: Tensor, opts?: BackwardOptions): void {
  backward(this, grad, opts);
};
Tensor.prototype.requireGrad = function <T extends Tensor>(this: T, on = true): T {
  this.requiresGrad = on;
  return this;
};
Tensor.prototype.zeroGrad = function (this: Tensor): void {
  this.grad?.dispose();
  this.grad = null;
};
