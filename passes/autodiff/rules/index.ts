/**
 * All gradient rules, one table per op family. A keyed literal per family makes a duplicate
 * within a file a compile error; test/autodiff/registry.test.ts rejects a key found in two files.
 */
import type { GradRuleTable } from '../types.js';
import { rules as elementwise } from './elementwise.js';
import { rules as linear } from './linear.js';
import { rules as norm } from './norm.js';
import { rules as pool } from './pool.js';
import { rules as recurrent } from './recurrent.js';
import { rules as reduce } from './reduce.js';
import { rules as shape } from './shape.js';

export const ruleFamilies: Record<string, GradRuleTable> = { elementwise, linear, pool, norm, shape, reduce, recurrent };

export const gradRules: GradRuleTable = Object.assign({}, ...Object.values(ruleFamilies));
