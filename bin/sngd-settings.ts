/**
 * `sngd train`'s SNGD settings from its options. Each SNGD option has DEFAULT_SNGD's value as its
 * commander default; a base set of defaults (SNGD.md §6's with --reference, CONV_SNGD for models
 * with convolutions) replaces every option the user left at its default, so an option given on the
 * command line always wins.
 */
import type { EmaInit } from '../runtime/fisher.js';
import { CONV_SNGD, REFERENCE_SNGD, type SngdSettings } from '../runtime/trainer.js';

/** --defaults: DEFAULT_SNGD ('dense'), CONV_SNGD ('conv'), or by the model ('auto': conv when it has convolutions). */
export type DefaultsName = 'auto' | 'dense' | 'conv';
export const DEFAULTS_NAMES: readonly DefaultsName[] = ['auto', 'dense', 'conv'];

/** Command-line option (commander's camel-cased key) → the SngdSettings field it sets, for the options a base replaces. */
const FIELD_OF_OPTION: Record<string, keyof SngdSettings> = {
  emaDecay: 'emaDecay', epsRel: 'epsRel', epsAbs: 'epsAbs', refreshEvery: 'refreshEvery', emaInit: 'emaInit', root: 'rootMethod',
  refreshStart: 'refreshStart', statEvery: 'statEvery', dampingWarmup: 'dampingWarmup',
};

export interface SngdChoice {
  sngd: SngdSettings;
  /** With --defaults auto: the settings for a model with convolutions (train() picks). */
  sngdForConv?: SngdSettings;
}

export function sngdSettings(o: Record<string, unknown>, isDefault: (option: string) => boolean): SngdChoice {
  const given: SngdSettings = {
    emaDecay: o.emaDecay as number,
    epsRel: o.epsRel as number,
    epsAbs: o.epsAbs as number,
    refreshEvery: o.refreshEvery as number,
    emaInit: o.emaInit as EmaInit,
    rootMethod: o.root as 'ns' | 'db',
    refreshStart: o.refreshStart as 'cold' | 'warm' | 'track',
    refreshGate: o.refreshGate as number,
    statEvery: o.statEvery as number,
    asyncRefresh: Boolean(o.asyncRefresh),
    dampingWarmup: o.dampingWarmup as number,
    asyncLag: o.asyncLag as number,
    nystromTail: o.nystromTail as 'damping' | 'mean',
  };
  if (o.reference) return { sngd: withBase(given, REFERENCE_SNGD, isDefault) };
  const which = (o.defaults as DefaultsName | undefined) ?? 'auto';
  if (which === 'dense') return { sngd: given };
  const conv = withBase(given, CONV_SNGD, isDefault);
  return which === 'conv' ? { sngd: conv } : { sngd: given, sngdForConv: conv };
}

/** `settings` with every option left at its default taken from `base`. */
function withBase(settings: SngdSettings, base: SngdSettings, isDefault: (option: string) => boolean): SngdSettings {
  const out: Record<string, unknown> = { ...settings };
  for (const [option, field] of Object.entries(FIELD_OF_OPTION)) if (isDefault(option)) out[field] = base[field] ?? (field === 'dampingWarmup' ? 0 : undefined);
  return out as unknown as SngdSettings;
}
