/**
 * `sngd train`'s SNGD settings (bin/sngd-settings.ts): the defaults the user gets for dense and
 * convolutional models, --reference, and options given on the command line winning over both.
 */
import { describe, expect, it } from 'vitest';
import { sngdSettings } from '../bin/sngd-settings.js';
import { DEFAULT_TRACK_GATE } from '../runtime/roots.js';
import { CONV_SNGD, DEFAULT_SNGD, REFERENCE_SNGD, type SngdSettings } from '../runtime/trainer.js';

/** Commander's option values when nothing is given (bin/sngd.ts: DEFAULT_SNGD's values), with `given` on top. */
function options(given: Record<string, unknown> = {}): { o: Record<string, unknown>; isDefault: (k: string) => boolean } {
  const defaults: Record<string, unknown> = {
    emaDecay: DEFAULT_SNGD.emaDecay, epsRel: DEFAULT_SNGD.epsRel, epsAbs: DEFAULT_SNGD.epsAbs, refreshEvery: DEFAULT_SNGD.refreshEvery,
    emaInit: DEFAULT_SNGD.emaInit, root: DEFAULT_SNGD.rootMethod, refreshStart: DEFAULT_SNGD.refreshStart, refreshGate: DEFAULT_TRACK_GATE,
    statEvery: DEFAULT_SNGD.statEvery, dampingWarmup: DEFAULT_SNGD.dampingWarmup, asyncLag: 20, nystromTail: 'mean', defaults: 'auto',
  };
  return { o: { ...defaults, ...given }, isDefault: (k) => !(k in given) };
}

/** The fields a set of defaults decides. */
const core = (s: SngdSettings) => ({ emaDecay: s.emaDecay, epsRel: s.epsRel, epsAbs: s.epsAbs, refreshEvery: s.refreshEvery, emaInit: s.emaInit, rootMethod: s.rootMethod, refreshStart: s.refreshStart, statEvery: s.statEvery, dampingWarmup: s.dampingWarmup ?? 0 });

describe('sngd train settings', () => {
  it('auto: DEFAULT_SNGD for the model, and CONV_SNGD should it have convolutions', () => {
    const { o, isDefault } = options();
    const choice = sngdSettings(o, isDefault);
    expect(core(choice.sngd)).toEqual(core(DEFAULT_SNGD));
    expect(core(choice.sngdForConv!)).toEqual(core(CONV_SNGD));
    expect(core(CONV_SNGD)).toEqual({ ...core(REFERENCE_SNGD), statEvery: 10 });
  });

  it('an option given on the command line wins over either set of defaults', () => {
    const { o, isDefault } = options({ epsRel: 3e-3, refreshEvery: 40 });
    const choice = sngdSettings(o, isDefault);
    expect([choice.sngd.epsRel, choice.sngd.refreshEvery]).toEqual([3e-3, 40]);
    expect(core(choice.sngdForConv!)).toEqual({ ...core(CONV_SNGD), epsRel: 3e-3, refreshEvery: 40 });
  });

  it('--defaults dense or conv fixes the choice; --reference overrides both', () => {
    const dense = sngdSettings(...Object.values(options({ defaults: 'dense' })) as [Record<string, unknown>, (k: string) => boolean]);
    expect([core(dense.sngd), dense.sngdForConv]).toEqual([core(DEFAULT_SNGD), undefined]);
    const conv = sngdSettings(...Object.values(options({ defaults: 'conv' })) as [Record<string, unknown>, (k: string) => boolean]);
    expect([core(conv.sngd), conv.sngdForConv]).toEqual([core(CONV_SNGD), undefined]);
    const reference = sngdSettings(...Object.values(options({ reference: true, statEvery: 5 })) as [Record<string, unknown>, (k: string) => boolean]);
    expect([core(reference.sngd), reference.sngdForConv]).toEqual([{ ...core(REFERENCE_SNGD), statEvery: 5 }, undefined]);
  });
});
