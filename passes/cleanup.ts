/**
 * Dead-code cleanup: drops nodes whose outputs reach no graph output, then initializers and
 * value_info entries nothing reads. Graph inputs are part of the interface and always stay.
 * Nodes with subgraphs count their bodies' outer-scope reads as uses.
 */
import { cloneGraph, type Graph, type Node } from '../src/ir/graph.js';
import type { GraphProto } from '../src/onnx/proto.js';

export function cleanup(g: Graph): Graph {
  const out = cloneGraph(g);
  const needed = new Set(g.outputs.map((v) => v.name));
  const kept: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = out.nodes[i]!;
    if (!n.outputs.some((o) => o && needed.has(o))) continue;
    kept.push(n);
    for (const input of n.inputs) if (input) needed.add(input);
    for (const name of subgraphReads(n)) needed.add(name);
  }
  out.nodes = kept.reverse();
  for (const name of [...out.initializers.keys()]) if (!needed.has(name)) out.initializers.delete(name);
  for (const name of [...out.valueInfo.keys()]) if (!needed.has(name)) out.valueInfo.delete(name);
  return out;
}

/** Every value name a node's subgraph attributes read (a superset of outer-scope reads is fine here). */
function subgraphReads(n: Node): string[] {
  const names: string[] = [];
  const visit = (gp: GraphProto): void => {
    for (const sub of gp.node ?? []) {
      names.push(...(sub.input ?? []));
      for (const a of sub.attribute ?? []) {
        if (a.g) visit(a.g);
        for (const s of a.graphs ?? []) visit(s);
      }
    }
  };
  for (const a of n.attrs) {
    if (a.g) visit(a.g);
    for (const s of a.graphs ?? []) visit(s);
  }
  return names;
}
