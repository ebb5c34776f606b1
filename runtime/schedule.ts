/**
 * Learning-rate schedules, as a multiplier of the base rate at a given step:
 *   constant, step (×γ every `stepEpochs` epochs), cosine (to 0 at the last step), each after an
 *   optional linear warm-up over `warmupSteps`.
 */
export type ScheduleKind = 'constant' | 'step' | 'cosine';

export interface ScheduleConfig {
  kind: ScheduleKind;
  warmupSteps: number;
  /** step: decay factor and period in epochs. */
  gamma: number;
  stepEpochs: number;
}

export function learningRate(base: number, cfg: ScheduleConfig, step: number, stepsPerEpoch: number, totalSteps: number): number {
  const warm = cfg.warmupSteps > 0 && step < cfg.warmupSteps ? (step + 1) / cfg.warmupSteps : 1;
  let factor = 1;
  if (cfg.kind === 'step') factor = cfg.gamma ** Math.floor(step / (stepsPerEpoch * cfg.stepEpochs));
  else if (cfg.kind === 'cosine') factor = 0.5 * (1 + Math.cos((Math.PI * Math.min(step, totalSteps)) / Math.max(1, totalSteps)));
  return base * warm * factor;
}
