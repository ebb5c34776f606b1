/** Node order for shape inference: the graph's own order when it is already topological, else Kahn's. */
import type { Graph, Node } from '../ir/graph.js';

/** Nodes in a topological order (stable: ties keep graph order). Nodes in a cycle go last, as listed. */
export function topoOrder(g: Graph): Node[] {
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));
  const deps = g.nodes.map((n, i) => new Set(n.inputs.filter((x) => x && producer.has(x) && producer.get(x) !== i).map((x) => producer.get(x)!)));
  if (deps.every((d, i) => [...d].every((j) => j < i))) return g.nodes;

  const users: number[][] = g.nodes.map(() => []);
  deps.forEach((d, i) => d.forEach((j) => users[j]!.push(i)));
  const pending = deps.map((d) => d.size);
  const ready = pending.flatMap((p, i) => (p === 0 ? [i] : []));
  const order: number[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    order.push(i);
    for (const u of users[i]!) if (--pending[u]! === 0) ready.push(u);
  }
  const placed = new Set(order);
  g.nodes.forEach((_, i) => placed.has(i) || order.push(i));
  return order.map((i) => g.nodes[i]!);
}
