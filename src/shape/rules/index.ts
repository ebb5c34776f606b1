/** The shape-rule registry: one table per op family, merged. A test checks that no op is in two tables. */
import type { ShapeRuleTable } from '../types.js';
import { rules as conv } from './conv.js';
import { rules as elementwise } from './elementwise.js';
import { rules as indexing } from './indexing.js';
import { rules as matmul } from './matmul.js';
import { rules as misc } from './misc.js';
import { rules as norm } from './norm.js';
import { rules as pool } from './pool.js';
import { rules as recurrent } from './recurrent.js';
import { rules as reduce } from './reduce.js';
import { rules as shapeOps } from './shape-ops.js';

/** Each family's table by file name (for the duplicate check). */
export const ruleFamilies: Record<string, ShapeRuleTable> = {
  elementwise, matmul, conv, pool, norm, 'shape-ops': shapeOps, indexing, reduce, recurrent, misc,
};

export const shapeRules: ShapeRuleTable = Object.assign({}, ...Object.values(ruleFamilies));
