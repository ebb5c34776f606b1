/**
 * Opset upgrade: brings a model's default-domain (ai.onnx) opset from any version up to the
 * project's working opset (17 by default), rewriting every node whose signature or semantics
 * changed on the way, e.g.
 *
 *   Reshape-1(x; shape=[2,-1])            → Reshape(x, [2,-1])                   (at 5)
 *   Add-6(a, b[C]; broadcast=1, axis=1)   → Add(a, b[C,1,1])                     (at 7)
 *   PRelu-6(x[N,C,H,W], slope[C])         → PRelu(x, slope[C,1,1])               (at 7)
 *   Softmax-11(x[N,C,H,W]; axis=1)        → Reshape(Softmax(Flatten(x, 1)), Shape(x))   (at 13)
 *
 * The rules live in rules/*.ts, one entry per op: a list of steps `{at, adapt}`. A node of a
 * model at opset v0 gets every step with v0 < at <= target, in order; a step that changes the
 * op type (Upsample → Resize) hands the node to the new op's steps. Ops whose changes need no
 * rewrite are named in rules/unchanged.ts; any other op is refused naming the node. Other
 * domains (com.microsoft, ai.onnx.ml, ...) are left alone. If/Loop/Scan bodies are upgraded
 * with the same rules.
 */
import { SngdError } from '../../src/errors.js';
import { cloneModel, defaultOpset, isDefaultDomain, NameAuthority, type Graph, type Model, type Node } from '../../src/ir/graph.js';
import { removeAttr } from '../../src/ir/attrs.js';
import type { AttributeProto } from '../../src/onnx/proto.js';
import { Scope } from './context.js';
import { RULES, UNCHANGED } from './rules/index.js';
import { bodyFromProto, bodyToProto, graphsOf, hasSubgraphs, namesInBody, readsInBody } from './subgraph.js';
import type { UpgradeContext } from './types.js';

export type { UpgradeContext, UpgradeStep, UpgradeTable } from './types.js';

/** The project's working opset. */
export const WORKING_OPSET = 17;
/** Highest target whose changes the rules know (steps exist up to this version). */
export const MAX_TARGET = 21;
/** Lowest IR version each target opset needs. */
const IR_FOR_OPSET: Record<number, number> = { 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };

interface Run {
  from: number;
  target: number;
  names: NameAuthority;
  source?: string;
}

/**
 * Returns a copy of `model` whose ai.onnx opset is `target` (default 17), with every node
 * rewritten to keep its old-opset meaning. The input model is never mutated; a model already at
 * `target` or above comes back as an unchanged copy. Throws SngdError naming the node when a
 * node cannot be upgraded.
 */
export function upgradeOpset(model: Model, target = WORKING_OPSET): Model {
  const at = model.source ? `${model.source}: ` : '';
  if (!Number.isInteger(target) || target < WORKING_OPSET || target > MAX_TARGET) {
    throw new SngdError(`${at}opset upgrade target must be an integer from ${WORKING_OPSET} to ${MAX_TARGET}, got ${target}`);
  }
  const from = defaultOpset(model);
  const out = cloneModel(model);
  if (from >= target) return out;
  if (((model.extra?.functions as unknown[] | undefined)?.length ?? 0) > 0) {
    throw new SngdError(`${at}cannot upgrade from opset ${from}: the model has model-local functions, which this pass does not rewrite; re-export the model at opset ${target}`);
  }
  const names = new NameAuthority(out.graph);
  for (const n of out.graph.nodes) for (const a of n.attrs) for (const g of graphsOf(a)) for (const name of namesInBody(g)) names.reserve(name);
  upgradeGraph(out.graph, { from, target, names, source: model.source }, undefined, '');
  out.opsets.delete('ai.onnx');
  out.opsets.set('', target);
  out.irVersion = Math.max(out.irVersion, IR_FOR_OPSET[target] ?? 8);
  return out;
}

/** Upgrades a graph (a private copy) in place; `where` locates a body in messages. */
function upgradeGraph(g: Graph, run: Run, parent: Scope | undefined, where: string): void {
  const scope = new Scope(g, parent);
  const usedBefore = usedValues(g);
  const nodes: Node[] = [];
  for (const node of g.nodes) {
    const before: Node[] = [];
    const after: Node[] = [];
    if (isDefaultDomain(node.domain)) upgradeNode(node, makeContext(node, scope, run, where, before, after));
    if (hasSubgraphs(node)) node.attrs = node.attrs.map((a) => upgradeBodies(a, node, scope, run, where));
    nodes.push(...before, node, ...after);
  }
  g.nodes = nodes;
  // Constants the rewrite replaced (a reshaped broadcast operand, ...) are dropped once unread;
  // graph inputs stay (they are part of the model's interface).
  const usedAfter = usedValues(g);
  for (const name of [...g.initializers.keys()]) {
    if (usedBefore.has(name) && !usedAfter.has(name) && !g.inputs.some((v) => v.name === name)) g.initializers.delete(name);
  }
}

function usedValues(g: Graph): Set<string> {
  const used = new Set<string>(g.outputs.map((v) => v.name));
  for (const n of g.nodes) {
    for (const i of n.inputs) if (i) used.add(i);
    for (const a of n.attrs) for (const b of graphsOf(a)) readsInBody(b, used);
  }
  return used;
}

function upgradeBodies(a: AttributeProto, node: Node, scope: Scope, run: Run, where: string): AttributeProto {
  const up = (gp: NonNullable<AttributeProto['g']>): NonNullable<AttributeProto['g']> => {
    const body = bodyFromProto(gp, run.source);
    upgradeGraph(body, run, scope, `${where} in the '${a.name}' subgraph of node '${node.name}' (${node.opType})`);
    return bodyToProto(body);
  };
  if (!a.g && !(a.graphs?.length)) return a;
  return { ...a, ...(a.g ? { g: up(a.g) } : {}), ...(a.graphs?.length ? { graphs: a.graphs.map(up) } : {}) };
}

/** Applies the op's steps with from < at <= target; follows the node when a step renames its op. */
function upgradeNode(node: Node, ctx: UpgradeContext): void {
  // consumed_inputs (opsets 1-5) names no attribute of any later op; exporters left it on
  // nodes of later opsets too, where onnxruntime rejects it.
  removeAttr(node, 'consumed_inputs');
  let version = ctx.from;
  for (;;) {
    const op = node.opType;
    const steps = RULES[op];
    if (!steps) {
      if (UNCHANGED.has(op)) return;
      ctx.fail(`no upgrade rule for ${op}; re-export the model at opset ${ctx.target}, or add a rule in passes/upgrade/rules/`);
    }
    // A deprecated/removed op still used in a newer model means its last real version.
    for (const s of steps) if (s.evenAfter && s.at <= version) version = s.at - 1;
    let renamed = false;
    for (const s of steps) {
      if (s.at <= version || s.at > ctx.target) continue;
      s.adapt(node, ctx);
      version = s.at;
      if (node.opType !== op) {
        renamed = true;
        break;
      }
    }
    if (!renamed) return;
  }
}

function makeContext(node: Node, scope: Scope, run: Run, where: string, before: Node[], after: Node[]): UpgradeContext {
  const label = `${run.source ? `${run.source}: ` : ''}cannot upgrade node '${node.name}' (${node.opType})${where} from opset ${run.from}`;
  const fresh = (role: string): string => run.names.fresh(`${node.name}/upgrade/${role}`);
  const add = (list: Node[], opType: string, inputs: string[], outputs: string[], attrs: AttributeProto[]): void => {
    list.push({ name: fresh(opType), opType, domain: '', inputs, outputs, attrs });
  };
  return {
    from: run.from,
    target: run.target,
    graph: scope.graph,
    fresh,
    before(opType, inputs, attrs = [], nOutputs = 1) {
      const outputs = Array.from({ length: nOutputs }, (_, k) => fresh(`${opType}_out${k}`));
      add(before, opType, inputs, outputs, attrs);
      return outputs;
    },
    after(opType, inputs, outputs, attrs = []) {
      add(after, opType, inputs, outputs, attrs);
    },
    addInit(role, tensor) {
      const name = fresh(role);
      scope.graph.initializers.set(name, { tensor });
      return name;
    },
    constant: (v) => scope.constant(v),
    shape: (v) => scope.shape(v),
    rank: (v) => scope.rank(v),
    elemType: (v) => scope.elemType(v),
    isUsed: (v) => scope.isUsed(v),
    fail(reason): never {
      throw new SngdError(`${label}: ${reason}`);
    },
  };
}
