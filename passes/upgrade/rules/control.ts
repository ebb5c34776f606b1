/**
 * Control flow. If and Loop bodies are upgraded by the driver like any graph; the ops themselves
 * only widened their types. Scan-8 (batched, with a sequence_lens input) became the unbatched
 * Scan-9, whose inputs and body signature differ: refused.
 */
import { refuse, same } from '../helpers.js';
import type { UpgradeTable } from '../types.js';

export const rules = {
  If: [same(11, 'branch output shapes may differ'), same(13, 'sequence types'), same(16, 'optional types')],
  Loop: [same(11, 'loop-carried shapes may change'), same(13, 'sequence types'), same(16, 'optional types')],
  Scan: [
    refuse(9, 'Scan-8 (batched, with a sequence_lens input) has a different signature from Scan-9; re-export the model at opset 9 or later'),
    same(11, 'negative axes'),
    same(16, 'optional types'),
  ],
} satisfies UpgradeTable;
