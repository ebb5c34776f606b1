/**
 * The text of `sngd-compile --report`: each rebuilt layer's choices (side, dense or Nyström) and
 * its predicted milliseconds per step under plain GD and SNGD, the step totals and their ratio,
 * where SNGD's time goes, and which machine profile the numbers come from.
 */
import type { MachineProfile, TrainingCost } from '../passes/cost/index.js';
import { table } from './cli-common.js';

const ms = (s: number) => (s * 1e3).toFixed(s < 0.01 ? 3 : 2);
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(1)}×` : '–');

export function costReportLines(cost: TrainingCost): string[] {
  const { settings: s, sngd, plain } = cost;
  const rows = cost.layers.map((l) => [l.name, l.op, l.side, l.fisher, l.fisherDim, ms(l.plain), ms(l.sngd), ratio(l.sngd, l.plain)]);
  const otherPlain = plain.other;
  rows.push(['rest of the step', '', '', '', '', ms(otherPlain), ms(sngd.other), ratio(sngd.other, otherPlain)]);
  rows.push(['total', '', '', '', '', ms(plain.seconds), ms(sngd.seconds), ratio(sngd.seconds, plain.seconds)]);
  const steps = [...sngd.refresh.steps].map(([d, k]) => `${k} at d̃ = ${d}`).join(', ');
  return [
    `predicted time per training step at batch ${s.batch}, T = ${s.refreshEvery} (ms; passes/cost, ${profileLine(cost.profile)}):`,
    table(['layer', 'op', 'side', 'fisher', 'fisher dim', 'plain GD', 'SNGD', 'SNGD / GD'], rows),
    `predicted SNGD step: ${cost.ratio.toFixed(2)}× plain GD's. ` +
      `SNGD: graph ${ms(sngd.graphPerStep)} ms (${sngd.graph.nodes} kernels, ${(sngd.graph.flops / 1e9).toFixed(3)} GFLOP), host ${ms(sngd.host)} ms (EMA, finite checks, update), ` +
      `refresh ${ms(sngd.refresh.seconds)} ms every ${s.refreshEvery} steps${steps ? ` (Newton–Schulz steps: ${steps})` : ''}; ` +
      `plain GD: graph ${ms(plain.graphPerStep)} ms (${plain.graph.nodes} kernels), host ${ms(plain.host)} ms.`,
    "'rest of the step': the session run's fixed costs, loss, activations and gradient plumbing no layer owns; each layer's time includes its kernels, output copies, host loops and (SNGD) its refresh share.",
  ];
}

export function profileLine(p: MachineProfile): string {
  const rates = `gemm ${(p.gemmFlops / 1e9).toFixed(0)} GFLOP/s, ${(p.node * 1e6).toFixed(2)} µs per kernel, ${(p.run * 1e6).toFixed(0)} µs per run, memory ${(p.memoryBytes / 1e9).toFixed(0)} GB/s, EMA ${(p.host.ema * 1e9).toFixed(1)} ns per element`;
  return p.calibrated ? `calibrated ${p.date?.slice(0, 10) ?? ''} on ${p.machine ?? 'this machine'}: ${rates}` : `NOT calibrated, default rates (run with --calibrate to measure this machine): ${rates}`;
}
