/**
 * Reverse-mode autodiff as a graph pass: appends, in standard ONNX ops, the nodes that compute
 * d(loss)/d(w) for every requested tensor w. The driver owns the invariants (STYLE.md §5):
 * which nodes need a backward (only those on a path loss ← … ← w), accumulation over a value's
 * consumers, undoing broadcasts, and the error for an op without a rule.
 */
import { SngdError } from '../../src/errors.js';
import { Emitter } from '../../src/ir/emit.js';
import { cloneModel, defaultOpset, indexGraph, NameAuthority, type Dim, type Graph, type Model, type Node } from '../../src/ir/graph.js';
import { BROADCASTING, FLOAT_TYPES, NON_DIFFERENTIABLE } from '../../src/ir/ops.js';
import { float32Tensor, int64Tensor, type Tensor } from '../../src/onnx/tensor.js';
import { analyzeShapes } from '../../src/shape/index.js';
import { sortNodes } from '../toposort.js';
import { sumToShape } from './broadcast.js';
import { gradRules } from './rules/index.js';
import type { GradContext } from './types.js';

export interface DifferentiateOptions {
  /** The scalar to differentiate (seeded with 1), unless `seeds` are given. */
  loss?: string;
  /**
   * Start values of the backward pass: gradients of the loss w.r.t. some values, known in closed
   * form (a loss head's gradient w.r.t. the logits, say). Replaces the seed on `loss`.
   */
  seeds?: { value: string; grad: string }[];
  /** Values (graph inputs or initializers) to differentiate with respect to. */
  wrt: string[];
}

export interface DifferentiateResult {
  model: Model;
  /** wrt name → name of its gradient value. */
  grads: Map<string, string>;
}

export function differentiate(model: Model, opts: DifferentiateOptions): DifferentiateResult {
  const out = cloneModel(model);
  const g = out.graph;
  const available = new Set([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  g.nodes = sortNodes(g.nodes, available, g.name);
  const { infos } = analyzeShapes(out);
  const shape = (v: string): Dim[] | undefined => infos.get(v)?.shape;
  const elemType = (v: string): number | undefined => infos.get(v)?.elemType;
  const isFloat = (v: string): boolean => {
    const t = elemType(v);
    return t === undefined || FLOAT_TYPES.has(t);
  };
  const names = new NameAuthority(g);
  const opset = defaultOpset(out);
  const forwardNodes = [...g.nodes];

  // Values that depend on a wrt tensor through differentiable float ops.
  const live = new Set(opts.wrt);
  for (const n of forwardNodes) {
    if (NON_DIFFERENTIABLE.has(n.opType)) continue;
    if (n.inputs.some((i) => i && live.has(i))) for (const o of n.outputs) if (o && isFloat(o)) live.add(o);
  }
  const seeds = opts.seeds ?? (opts.loss ? [{ value: opts.loss, grad: '' }] : []);
  if (seeds.length === 0) throw new SngdError('differentiate: give a loss or seed gradients');
  const lossLabel = opts.loss ?? seeds.map((s) => s.value).join(', ');
  // Values the loss depends on.
  const needed = new Set(seeds.map((s) => s.value));
  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const n = forwardNodes[i]!;
    if (n.outputs.some((o) => needed.has(o))) for (const input of n.inputs) if (input) needed.add(input);
  }
  if (!seeds.some((s) => live.has(s.value))) {
    throw new SngdError(`the loss '${lossLabel}' does not depend on any of the trainable tensors (${opts.wrt.slice(0, 5).join(', ')}${opts.wrt.length > 5 ? ', …' : ''})`);
  }

  const contributions = new Map<string, string[]>();
  const add = (value: string, grad: string): void => {
    const list = contributions.get(value);
    if (list) list.push(grad);
    else contributions.set(value, [grad]);
  };
  const seedEmitter = new Emitter(g, names, 'grad');
  for (const s of seeds) {
    const ones = () => seedEmitter.init('seed', float32Tensor((shape(s.value) ?? []).map(() => 1), [1]));
    add(s.value, s.grad || ones());
  }

  const total = (value: string, b: Emitter): string | undefined => {
    const list = contributions.get(value);
    if (!list || list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    const sum = b.op('Sum', list);
    contributions.set(value, [sum]);
    return sum;
  };

  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const node = forwardNodes[i]!;
    if (NON_DIFFERENTIABLE.has(node.opType)) continue;
    if (!node.outputs.some((o) => o && live.has(o) && needed.has(o))) continue;
    const targets = node.inputs.map((x, k) => ({ x, k })).filter(({ x }) => x && live.has(x) && isFloat(x));
    if (targets.length === 0) continue;
    const b = new Emitter(g, names, `${node.name}/grad`);
    const dy = node.outputs.map((o) => (o ? total(o, b) : undefined));
    if (dy.every((d) => d === undefined)) continue;
    const rule = node.domain === '' || node.domain === 'ai.onnx' ? gradRules[node.opType] : undefined;
    if (!rule) {
      throw new SngdError(`no gradient rule for ${node.opType} at node '${node.name}' on the path ${describePath(g, node, opts.wrt, seeds.map((s) => s.value), live, needed)}; it lies between the loss and a trainable tensor`);
    }
    const ctx = makeContext(node, dy, b, { opset, shape, elemType });
    const thunks = rule(ctx);
    for (const { x, k } of targets) {
      const thunk = thunks[k];
      if (!thunk) return ctx.fail(`its gradient rule has no gradient for input ${k} ('${x}')`);
      let dx = thunk();
      if (BROADCASTING.has(node.opType)) dx = sumToShape(b, dx, shape(node.outputs[0]!), shape(x), x);
      add(x, dx);
    }
  }

  const grads = new Map<string, string>();
  const finish = new Emitter(g, names, 'grad');
  for (const w of opts.wrt) {
    const gv = total(w, finish);
    grads.set(w, gv ?? zerosLike(finish, w, shape(w)));
  }
  return { model: out, grads };
}

function makeContext(node: Node, dy: (string | undefined)[], b: Emitter, env: { opset: number; shape: (v: string) => Dim[] | undefined; elemType: (v: string) => number | undefined }): GradContext {
  const fail = (message: string): never => {
    throw new SngdError(`gradient of node '${node.name}' (${node.opType}): ${message}`);
  };
  const ctx: GradContext = {
    node,
    x: node.inputs,
    y: node.outputs,
    dy,
    b,
    opset: env.opset,
    shape: env.shape,
    elemType: env.elemType,
    constant: (base: string, t: Tensor) => b.init(base, t),
    scalar: (v: number) => b.init('c', float32Tensor([], [v])),
    ints: (values: number[]) => b.init('i', int64Tensor([values.length], values)),
    forwardOutput(k: number) {
      while (node.outputs.length <= k) node.outputs.push('');
      if (!node.outputs[k]) node.outputs[k] = b.names.fresh(`${node.name}/out${k}`);
      return node.outputs[k]!;
    },
    dyOrZeros(k: number) {
      return dy[k] ?? zerosLike(b, node.outputs[k]!, env.shape(node.outputs[k]!));
    },
    fail,
  };
  return ctx;
}

function zerosLike(b: Emitter, value: string, _shape: Dim[] | undefined): string {
  return b.op('ConstantOfShape', [b.op('Shape', [value])], { value: float32Tensor([1], [0]) });
}

/** A readable path loss ← … ← node ← … ← w, for the missing-rule error. */
function describePath(g: Graph, node: Node, wrt: string[], ends: string[], live: Set<string>, needed: Set<string>): string {
  const { producer, consumers } = indexGraph(g);
  // Towards the loss: follow consumers whose outputs the loss needs.
  const down: string[] = [];
  let cur: Node | undefined = node;
  for (let guard = 0; cur && guard < 50; guard++) {
    const out: string | undefined = cur.outputs.find((o) => needed.has(o) && live.has(o));
    if (!out || ends.includes(out)) break;
    cur = (consumers.get(out) ?? []).find((c) => c.outputs.some((o) => needed.has(o)));
    if (cur) down.push(cur.name);
  }
  // Towards a trainable tensor: follow producers of live inputs.
  const up: string[] = [];
  let value = node.inputs.find((i) => i && live.has(i));
  for (let guard = 0; value && guard < 50; guard++) {
    if (wrt.includes(value)) {
      up.push(value);
      break;
    }
    const p = producer.get(value);
    if (!p) break;
    up.push(p.name);
    value = p.inputs.find((i) => i && live.has(i));
  }
  return ['loss', ...down.reverse(), `[${node.name}]`, ...up].join(' ← ');
}
