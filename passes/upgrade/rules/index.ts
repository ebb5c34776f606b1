/** The upgrade registry: every family's rules merged, plus the set of ops needing none. */
import type { UpgradeTable } from '../types.js';
import { rules as control } from './control.js';
import { rules as elementwise } from './elementwise.js';
import { rules as experimental } from './experimental.js';
import { rules as nn } from './nn.js';
import { rules as reduce } from './reduce.js';
import { rules as shape } from './shape.js';

export { UNCHANGED } from './unchanged.js';

/** Each family's table, by file name (tests check that no op appears in two). */
export const FAMILIES: Readonly<Record<string, UpgradeTable>> = { control, elementwise, experimental, nn, reduce, shape };

export const RULES: UpgradeTable = Object.assign({}, ...Object.values(FAMILIES)) as UpgradeTable;
