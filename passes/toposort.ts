/**
 * Topological sort of a graph's nodes (Kahn's algorithm, stable: among ready nodes the one that
 * came first stays first, so an already-sorted graph keeps its order exactly).
 */
import { SngdError } from '../src/errors.js';
import { cloneGraph, type Graph, type Node } from '../src/ir/graph.js';

export function toposort(g: Graph): Graph {
  const out = cloneGraph(g);
  out.nodes = sortNodes(g.nodes, new Set([...g.inputs.map((v) => v.name), ...g.initializers.keys()]), g.name);
  return out;
}

/** Orders nodes so every input is produced before use; values in `available` need no producer. */
export function sortNodes(nodes: Node[], available: Set<string>, label: string): Node[] {
  const producerIndex = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => o && producerIndex.set(o, i)));
  const waiting = nodes.map((n) => new Set(n.inputs.filter((i) => i && !available.has(i) && producerIndex.has(i))));
  const dependents = new Map<number, number[]>();
  nodes.forEach((n, i) => {
    for (const input of waiting[i]!) {
      const p = producerIndex.get(input)!;
      dependents.set(p, [...(dependents.get(p) ?? []), i]);
    }
  });
  const pending = waiting.map((w) => w.size);
  // A min-heap would be O(n log n); a sorted ready list is simpler and fine at graph sizes here.
  const ready: number[] = [];
  pending.forEach((c, i) => c === 0 && ready.push(i));
  const order: Node[] = [];
  const done = new Set<string>();
  while (ready.length > 0) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    const n = nodes[i]!;
    order.push(n);
    for (const o of n.outputs) {
      if (!o || done.has(o)) continue;
      done.add(o);
    }
    for (const d of new Set(dependents.get(i) ?? [])) {
      const before = waiting[d]!;
      let removed = 0;
      for (const o of n.outputs) if (before.delete(o)) removed++;
      pending[d]! -= removed;
      if (pending[d] === 0) ready.push(d);
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.find((n) => !order.includes(n))!;
    throw new SngdError(`${label}: the graph has a cycle through node '${stuck.name}' (${stuck.opType})`);
  }
  return order;
}
