/**
 * Contractions.
 *   MatMul: [..., m, k] @ [..., k, n] → [broadcast(...), m, n]; a 1-D A gains (and loses) a leading 1,
 *           a 1-D B a trailing 1 (numpy matmul).
 *   Gemm:   Y[M, N] = alpha·op(A)·op(B) + beta·C, op = transpose when transA / transB.
 *   Einsum: output letters take the dims their input letters carry; '...' broadcasts.
 */
import { attrInt, attrString } from '../../ir/attrs.js';
import type { Dim } from '../../ir/graph.js';
import { broadcastDim, broadcastShapes, fmtShape } from '../helpers.js';
import { dimNormalize } from '../symbolic.js';
import { ElemType, type ShapeContext, type ShapeInfo, type ShapeRule, type ShapeRuleTable } from '../types.js';

/** Fails when two contraction dims are known to differ. */
function checkInner(ctx: ShapeContext, a: Dim, b: Dim, what: string): void {
  if (typeof a === 'number' && typeof b === 'number' && a !== b) ctx.fail(`${what}: ${a} and ${b} differ`);
}

function matmulShape(ctx: ShapeContext, a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a || !b) return undefined;
  if (a.length === 0 || b.length === 0) ctx.fail('MatMul does not take scalars');
  const A = a.length === 1 ? [1, a[0]!] : a;
  const B = b.length === 1 ? [b[0]!, 1] : b;
  checkInner(ctx, A[A.length - 1]!, B[B.length - 2]!, `inner dimensions of ${fmtShape(a)} @ ${fmtShape(b)}`);
  const batch = broadcastShapes(ctx, [A.slice(0, -2), B.slice(0, -2)])!;
  const out = [...batch];
  if (a.length > 1) out.push(A[A.length - 2]!);
  if (b.length > 1) out.push(B[B.length - 1]!);
  return out;
}

const matmul = (elemType?: number): ShapeRule => (_n, ctx) => [
  { elemType: elemType ?? ctx.input(0).elemType, shape: matmulShape(ctx, ctx.input(0).shape, ctx.input(1).shape) },
];

const gemm: ShapeRule = (node, ctx) => {
  const a = ctx.input(0).shape;
  const b = ctx.input(1).shape;
  const transA = attrInt(node, 'transA', 0) !== 0;
  const transB = attrInt(node, 'transB', 0) !== 0;
  if ((a && a.length !== 2) || (b && b.length !== 2)) ctx.fail(`Gemm takes 2-D A and B, got ${fmtShape(a)} and ${fmtShape(b)}`);
  const m = a ? a[transA ? 1 : 0]! : '?';
  const n = b ? b[transB ? 0 : 1]! : '?';
  if (a && b) checkInner(ctx, a[transA ? 0 : 1]!, b[transB ? 1 : 0]!, `inner dimensions of A ${fmtShape(a)} and B ${fmtShape(b)} (transA=${+transA}, transB=${+transB})`);
  return [{ elemType: ctx.input(0).elemType, shape: [m, n] }];
};

/** Einsum: letters → dims; an output without '->' lists the letters seen once, alphabetically. */
const einsum: ShapeRule = (node, ctx) => {
  const eq = attrString(node, 'equation', '').replace(/\s+/g, '');
  const elemType = ctx.input(0).elemType;
  const [lhs, rhs] = eq.split('->') as [string, string | undefined];
  const terms = lhs.split(',');
  if (terms.length !== ctx.numInputs) ctx.fail(`equation '${eq}' names ${terms.length} operands for ${ctx.numInputs} inputs`);
  const letters = new Map<string, Dim>();
  const counts = new Map<string, number>();
  let ellipsis: Dim[] | undefined = [];
  for (let i = 0; i < terms.length; i++) {
    const shape = ctx.input(i).shape;
    if (!shape) return [{ elemType }];
    const term = terms[i]!;
    const parts = term.split('...');
    const head = [...parts[0]!];
    const tail = [...(parts[1] ?? '')];
    const nEll = parts.length > 1 ? shape.length - head.length - tail.length : 0;
    if (nEll < 0 || (parts.length === 1 && head.length !== shape.length)) ctx.fail(`operand ${i} of shape ${fmtShape(shape)} does not match '${term}'`);
    const bind = (c: string, d: Dim): void => {
      counts.set(c, (counts.get(c) ?? 0) + 1);
      const old = letters.get(c);
      const r = old === undefined ? d : broadcastDim(old, d);
      if (r === undefined) return ctx.fail(`letter '${c}' is ${old} in one operand and ${d} in another`);
      letters.set(c, r);
    };
    head.forEach((c, k) => bind(c, shape[k]!));
    tail.forEach((c, k) => bind(c, shape[shape.length - tail.length + k]!));
    if (parts.length > 1) ellipsis = broadcastShapes(ctx, [ellipsis, shape.slice(head.length, head.length + nEll)]);
  }
  let outTerm = rhs;
  if (outTerm === undefined) {
    const once = [...counts].filter(([, c]) => c === 1).map(([l]) => l).sort();
    outTerm = (lhs.includes('...') ? '...' : '') + once.join('');
  }
  const out: Dim[] = [];
  const parts = outTerm.split('...');
  for (const c of parts[0]!) out.push(letters.get(c) ?? '?');
  if (parts.length > 1) {
    out.push(...(ellipsis ?? []));
    for (const c of parts[1]!) out.push(letters.get(c) ?? '?');
  }
  return [{ elemType, shape: out.map(dimNormalize) } satisfies ShapeInfo];
};

export const rules = {
  MatMul: matmul(),
  MatMulInteger: matmul(ElemType.INT32),
  Gemm: gemm,
  Einsum: einsum,
} satisfies ShapeRuleTable;
