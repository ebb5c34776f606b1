/**
 * Reductions: `axes` moved from an attribute to an optional input, for ReduceSum at 13 and for
 * every other Reduce* at 18 (absent axes still reduce over all axes).
 *
 *   ReduceSum-11(x; axes=[1])  → ReduceSum(x, [1])
 *   ReduceMean-17(x; axes=[1]) → ReduceMean(x, [1])   (only when the target is 18 or more)
 */
import { intsAttrToInput, same, step } from '../helpers.js';
import type { UpgradeStep, UpgradeTable } from '../types.js';

const axesToInput = (at: number): UpgradeStep => step(at, (n, ctx) => intsAttrToInput(n, ctx, 'axes', 1));
const negativeAxes = same(11, 'negative axes');
const at18 = [negativeAxes, axesToInput(18)];

export const rules = {
  ReduceSum: [negativeAxes, axesToInput(13)],
  ReduceMean: at18,
  ReduceMax: at18,
  ReduceMin: at18,
  ReduceProd: at18,
  ReduceL1: at18,
  ReduceL2: at18,
  ReduceLogSum: at18,
  ReduceLogSumExp: at18,
  ReduceSumSquare: at18,
} satisfies UpgradeTable;
