#!/usr/bin/env node
/**
 * sngd: export (fold Fisher layers back) and model (write reference architectures).
 */
import { Command, Option } from 'commander';
import type { LossKind } from '../passes/training/losses.js';
import { parseDataSpec } from '../runtime/data/index.js';
import type { DeviceName } from '../runtime/device.js';
import { evaluateModel } from '../runtime/evaluate.js';
import { OPTIMIZERS, type OptimizerName } from '../runtime/optimizers.js';
import type { ScheduleKind } from '../runtime/schedule.js';
import { DEFAULT_SNGD, train } from '../runtime/trainer.js';
import { DEFAULT_TRACK_GATE } from '../runtime/roots.js';
import { fold } from '../passes/fold.js';
import { cleanup } from '../passes/cleanup.js';
import { isReconstructed, readLayerRecords } from '../passes/reconstruct/record.js';
import { SngdError } from '../src/errors.js';
import { loadModel } from '../src/onnx/import.js';
import { saveModel } from '../src/onnx/export.js';
import { buildCnn } from '../models/cnn.js';
import { buildCnnBn } from '../models/cnn-bn.js';
import { buildLstmLm } from '../models/lstm-lm.js';
import { buildMlp } from '../models/mlp.js';
import { parseFloatOption, parseIntOption, parseMaxFisherDim, runCli } from './cli-common.js';
import { DEFAULTS_NAMES, sngdSettings } from './sngd-settings.js';
import { DEFAULT_MAX_UNIT_DIM } from '../passes/reconstruct/units.js';

const DEFAULT_LR: Record<OptimizerName, number> = { sngd: 0.1, sgd: 0.01, momentum: 0.01, adam: 0.001, adamw: 0.001 };

const program = new Command('sngd').description('Structured natural-gradient training for ONNX models.').showHelpAfterError();

program
  .command('export')
  .description('Fold the local Fisher layers back into the weights (W̃ = W̃′·P): the original architecture, inputs and outputs.')
  .argument('<model>', 'a reconstructed model (<stem>.sngd.onnx from sngd-compile or sngd train)')
  .requiredOption('-o, --output <file>', 'where to write the exported model')
  .option('--reconstructed', 'write the reconstructed graph itself (current P and W̃′), for inference in any ONNX runtime')
  .action(async (file: string, opts: { output: string; reconstructed?: boolean }) => {
    await runCli('sngd export', () => {
      const model = loadModel(file);
      const layers = readLayerRecords(model).length;
      if (!isReconstructed(model)) throw new SngdError(`${file}: has no local Fisher layers (not produced by sngd-compile?); nothing to export`);
      const out = opts.reconstructed ? { ...model, graph: cleanup(model.graph) } : fold(model);
      saveModel(opts.output, out);
      console.log(`${opts.reconstructed ? 'wrote the reconstructed graph' : `folded ${layers} layer(s)`} → ${opts.output}`);
    });
  });

const modelCmd = program.command('model').description('Write a reference architecture as an ONNX model.');
modelCmd
  .command('mlp')
  .description('A multilayer perceptron (Gemm + ReLU), PyTorch default initialisation.')
  .option('--layers <sizes>', 'comma-separated layer sizes, input first', '784,80,80,80,10')
  .option('--seed <n>', 'initialisation seed', parseIntOption('--seed', 0), 2017)
  .requiredOption('-o, --output <file>', 'where to write the model')
  .action(async (opts: { layers: string; seed: number; output: string }) => {
    await runCli('sngd model mlp', () => {
      const layers = opts.layers.split(',').map((s) => Number(s.trim()));
      saveModel(opts.output, buildMlp({ layers, seed: opts.seed }));
      console.log(`wrote ${opts.output} (${layers.join('-')} MLP, seed ${opts.seed})`);
    });
  });

modelCmd
  .command('cnn')
  .description('A small MNIST CNN (conv 1→8, conv 8→16 stride 2, 2×2 average pool, linear → 10), PyTorch default initialisation.')
  .option('--channels <c1,c2>', 'channels of the two convolutions', '8,16')
  .option('--seed <n>', 'initialisation seed', parseIntOption('--seed', 0), 2017)
  .requiredOption('-o, --output <file>', 'where to write the model')
  .action(async (opts: { channels: string; seed: number; output: string }) => {
    await runCli('sngd model cnn', () => {
      const c = opts.channels.split(',').map((v) => Number(v.trim()));
      if (c.length !== 2 || c.some((v) => !Number.isInteger(v) || v < 1)) throw new SngdError(`--channels needs two positive integers, got '${opts.channels}'`);
      saveModel(opts.output, buildCnn({ seed: opts.seed, channels: [c[0]!, c[1]!] }));
      console.log(`wrote ${opts.output} (CNN ${c.join('-')}, seed ${opts.seed})`);
    });
  });

modelCmd
  .command('cnn-bn')
  .description('The architecture of the corpus model pt_mnist_cnn_bn: three unpadded 3×3 convs (1→8→16→24) with ReLU, batch norm, linear 11616→32, ReLU, linear 32→10, batch norm, LogSoftmax; PyTorch default initialisation. Its 11616-wide linear gets a Nyström Fisher layer (--max-fisher-dim auto, the default, chooses it).')
  .option('--seed <n>', 'initialisation seed', parseIntOption('--seed', 0), 2017)
  .requiredOption('-o, --output <file>', 'where to write the model')
  .action(async (opts: { seed: number; output: string }) => {
    await runCli('sngd model cnn-bn', () => {
      saveModel(opts.output, buildCnnBn({ seed: opts.seed }));
      console.log(`wrote ${opts.output} (CNN with batch norm, the pt_mnist_cnn_bn architecture, seed ${opts.seed})`);
    });
  });

modelCmd
  .command('lstm-lm')
  .description('A character-level LSTM language model: tokens [N,T] → embedding → LSTM → linear → logits [N,V,T] (train with --loss ce).')
  .requiredOption('--vocab <n>', 'vocabulary size', parseIntOption('--vocab', 1))
  .option('--embed <n>', 'embedding width', parseIntOption('--embed', 1), 32)
  .option('--hidden <n>', 'LSTM hidden size', parseIntOption('--hidden', 1), 128)
  .option('--seed <n>', 'initialisation seed', parseIntOption('--seed', 0), 2017)
  .requiredOption('-o, --output <file>', 'where to write the model')
  .action(async (opts: { vocab: number; embed: number; hidden: number; seed: number; output: string }) => {
    await runCli('sngd model lstm-lm', () => {
      saveModel(opts.output, buildLstmLm({ vocab: opts.vocab, embed: opts.embed, hidden: opts.hidden, seed: opts.seed }));
      console.log(`wrote ${opts.output} (LSTM LM, vocabulary ${opts.vocab}, embedding ${opts.embed}, hidden ${opts.hidden}, seed ${opts.seed})`);
    });
  });

program
  .command('train')
  .description('Train a model with SNGD (or a first-order baseline on the same graph without Fisher layers).')
  .argument('<model>', 'ONNX model to train')
  .option('--data <spec>', "'mnist', 'idx:IMAGES,LABELS[,TEST_IMAGES,TEST_LABELS]' or 'npy:X.npy,Y.npy[,TEST_X.npy,TEST_Y.npy]'", 'mnist')
  .option('--validation <n>', 'samples held out from the end of the training set for validation', parseIntOption('--validation', 0), 10000)
  .option('--epochs <n>', 'epochs', parseIntOption('--epochs', 1), 1)
  .addOption(new Option('--optimizer <name>', 'optimizer').choices(OPTIMIZERS).default('sngd'))
  .option('--lr <rate>', 'learning rate (default: 0.1 for sngd, 0.01 sgd/momentum, 0.001 adam/adamw)', parseFloatOption('--lr', 0))
  .option('--momentum <m>', 'momentum (default 0.9 for momentum, 0 for sngd)', parseFloatOption('--momentum', 0))
  .option('--l2 <lambda>', 'L2 penalty on weights, not biases (SNGD.md §6: 1e-3)', parseFloatOption('--l2', 0), 1e-3)
  .option('--weight-decay <lambda>', "adamw's decoupled weight decay", parseFloatOption('--weight-decay', 0))
  .addOption(new Option('--schedule <kind>', 'learning-rate schedule').choices(['constant', 'step', 'cosine']).default('constant'))
  .option('--warmup-steps <n>', 'linear learning-rate warm-up', parseIntOption('--warmup-steps', 0), 0)
  .option('--step-gamma <g>', "'step' schedule: decay factor", parseFloatOption('--step-gamma', 0), 0.1)
  .option('--step-epochs <n>', "'step' schedule: period in epochs", parseIntOption('--step-epochs', 1), 1)
  .option('--batch-size <n>', 'batch size', parseIntOption('--batch-size', 1), 50)
  .option('--seed <n>', 'seed for data order', parseIntOption('--seed', 0), 2017)
  .option('--ema-decay <beta>', 'EMA decay of the Fisher statistics', parseFloatOption('--ema-decay', 0), DEFAULT_SNGD.emaDecay)
  .option('--eps-rel <e>', 'damping relative to tr(F)', parseFloatOption('--eps-rel', 0), DEFAULT_SNGD.epsRel)
  .option('--eps-abs <e>', 'absolute damping', parseFloatOption('--eps-abs', 0), DEFAULT_SNGD.epsAbs)
  .option('--refresh-every <T>', 'refresh the Fisher roots every T steps', parseIntOption('--refresh-every', 1), DEFAULT_SNGD.refreshEvery)
  .addOption(new Option('--ema-init <kind>', "'identity' (reference) or 'zero' (bias-corrected)").choices(['identity', 'zero']).default(DEFAULT_SNGD.emaInit))
  .addOption(new Option('--root <method>', 'square-root iteration: coupled Newton–Schulz or Denman–Beavers').choices(['ns', 'db']).default(DEFAULT_SNGD.rootMethod))
  .addOption(new Option('--refresh-start <how>', "after the first (cold) refresh: root F_λ from scratch ('cold'), again from the previous roots ('warm'), or correct the previous P for the drift of F, keeping roots within --refresh-gate ('track')").choices(['cold', 'warm', 'track']).default(DEFAULT_SNGD.refreshStart))
  .option('--refresh-gate <g>', "'track': keep a layer's roots while every eigenvalue of P·F_λ·Pᵀ is within 1 ± g", parseFloatOption('--refresh-gate', 0), DEFAULT_TRACK_GATE)
  .option('--damping-warmup <steps>', 'start ε_rel ×100 and decay it geometrically to --eps-rel over these steps', parseIntOption('--damping-warmup', 0), DEFAULT_SNGD.dampingWarmup ?? 0)
  .option('--reference', "SNGD.md §6's reference settings for every SNGD option not given: EMA from I, ε_rel 1e-4, T 100, statistics every step, cold refreshes, no damping warm-up")
  .addOption(new Option('--defaults <which>', "SNGD defaults for the options not given: 'dense' (bias-corrected EMA, ε_rel 1e-2, T 20, tracked, a statistic every 10 steps), 'conv' (the reference settings with a statistic every 10 steps), or 'auto': conv for a model with convolutions, else dense (--reference overrides)").choices(DEFAULTS_NAMES).default('auto'))
  .option('--async-refresh', 'compute dense roots on a worker thread while training goes on; install them --async-lag steps later')
  .option('--async-lag <n>', 'steps between an asynchronous refresh and its installation', parseIntOption('--async-lag', 1), 20)
  .option('--stat-every <k>', 'fold a Fisher statistic into the EMA every k steps', parseIntOption('--stat-every', 1), DEFAULT_SNGD.statEvery)
  .addOption(new Option('--side <side>', 'where the Fisher layers apply P').choices(['auto', 'weight', 'activation']).default('auto'))
  .option('--max-fisher-dim <n|auto|none>', "which layers get a low-rank-plus-identity Nyström Fisher layer: 'auto' chooses per layer from the predicted time and memory of its dense form at this run's batch size, T, --stat-every and damping; a number N: layers with d̃ > N; 'none': every layer dense", parseMaxFisherDim, 'auto')
  .option('--nystrom-rank <k>', 'rank of a Nyström Fisher layer', parseIntOption('--nystrom-rank', 1), 64)
  .addOption(new Option('--landmarks <how>', 'Nyström landmarks: seeded uniform, or the largest diag(F) entries at the first refresh').choices(['uniform', 'diagonal']).default('uniform'))
  .addOption(new Option('--fisher-blocks <blocks>', "Fisher blocks: one per layer, or one per output unit for hidden Gemm/MatMul layers before Relu/Sigmoid/Tanh (not the first or output layer)").choices(['layer', 'unit']).default('layer'))
  .option('--max-unit-dim <n>', 'with --fisher-blocks unit: layers with a larger Fisher dimension d̃ keep one block', parseIntOption('--max-unit-dim', 1), DEFAULT_MAX_UNIT_DIM)
  .addOption(new Option('--nystrom-tail <how>', "Nyström: eigenvalue outside the rank-k subspace, 0 ('damping') or the mean unexplained eigenvalue ('mean')").choices(['damping', 'mean']).default('mean'))
  .addOption(new Option('--loss <kind>', 'loss').choices(['ce', 'mse', 'bce']).default('ce'))
  .option('--output <name>', 'the model output the loss reads (default: the first)')
  .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'cuda', 'auto']).default('cpu'))
  .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', parseIntOption('--threads', 1))
  .option('--out <dir>', 'run folder: metrics.jsonl, checkpoints, model.onnx, metrics.svg', 'runs/latest')
  .option('--resume', 'continue from the newest checkpoint in --out')
  .option('--checkpoint-every <n>', 'also checkpoint every n steps', parseIntOption('--checkpoint-every', 0), 0)
  .option('--log-every <n>', "write a 'step' metrics record every n steps", parseIntOption('--log-every', 0), 100)
  .option('--eval-every <n>', "also evaluate validation and test accuracy every n steps inside an epoch (an 'eval' metrics record; 0: only at epoch ends)", parseIntOption('--eval-every', 0), 0)
  .option('--max-steps <n>', 'stop after n steps in total', parseIntOption('--max-steps', 1))
  .option('--quiet', 'no progress output')
  .action(async function (this: Command, file: string, o: Record<string, unknown>) {
    await runCli('sngd train', async () => {
      const optimizer = o.optimizer as OptimizerName;
      const result = await train({
        model: file,
        data: parseDataSpec(o.data as string),
        validation: o.validation as number,
        epochs: o.epochs as number,
        batchSize: o.batchSize as number,
        seed: o.seed as number,
        out: o.out as string,
        optimizer,
        lr: (o.lr as number | undefined) ?? DEFAULT_LR[optimizer],
        momentum: o.momentum as number | undefined,
        l2: o.l2 as number,
        weightDecay: o.weightDecay as number | undefined,
        schedule: { kind: o.schedule as ScheduleKind, warmupSteps: o.warmupSteps as number, gamma: o.stepGamma as number, stepEpochs: o.stepEpochs as number },
        ...sngdSettings(o, (key) => this.getOptionValueSource(key) === 'default'),
        maxFisherDim: o.maxFisherDim as number | 'auto',
        nystromRank: o.nystromRank as number,
        landmarks: o.landmarks as 'uniform' | 'diagonal',
        fisherBlocks: o.fisherBlocks as 'layer' | 'unit',
        maxUnitDim: o.maxUnitDim as number,
        loss: o.loss as LossKind,
        output: o.output as string | undefined,
        side: o.side as 'auto' | 'weight' | 'activation',
        device: o.device as DeviceName,
        threads: o.threads as number | undefined,
        resume: Boolean(o.resume),
        checkpointEvery: o.checkpointEvery as number,
        logEvery: o.logEvery as number,
        evalEvery: o.evalEvery as number,
        maxSteps: o.maxSteps as number | undefined,
        quiet: Boolean(o.quiet),
      });
      const last = result.epochs[result.epochs.length - 1];
      // The refresh share is of the training loop's time, evaluation excluded.
      const share = result.trainSeconds > 0 ? (100 * result.refreshSeconds) / result.trainSeconds : 0;
      console.log(`trained ${result.steps} steps in ${result.trainSeconds.toFixed(1)} s (refreshes ${result.refreshSeconds.toFixed(1)} s, ${share.toFixed(1)}%), evaluation ${(result.seconds - result.trainSeconds).toFixed(1)} s`);
      if (last?.testAccuracy !== undefined) console.log(`test accuracy ${(100 * last.testAccuracy).toFixed(2)}%  (loss ${last.testLoss!.toFixed(4)})`);
      console.log(`wrote ${result.modelFile}, ${o.out}/metrics.jsonl, ${o.out}/metrics.svg`);
    });
  });

program
  .command('eval')
  .description('Loss and accuracy of a model on a dataset.')
  .argument('<model>', 'ONNX model')
  .option('--data <spec>', "'mnist' (its test set), 'idx:…' or 'npy:…' (the given test pair, else the training pair)", 'mnist')
  .addOption(new Option('--loss <kind>', 'loss').choices(['ce', 'mse', 'bce']).default('ce'))
  .option('--output <name>', 'the model output to score (default: the first)')
  .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'cuda', 'auto']).default('cpu'))
  .action(async (file: string, o: { data: string; loss: LossKind; output?: string; device: DeviceName }) => {
    await runCli('sngd eval', async () => {
      const r = await evaluateModel(file, parseDataSpec(o.data), { loss: o.loss, output: o.output, device: o.device });
      console.log(`${r.dataset}: ${r.count} samples, loss ${r.loss.toFixed(4)}${r.accuracy !== undefined ? `, accuracy ${(100 * r.accuracy).toFixed(2)}%` : ''}`);
    });
  });

await program.parseAsync();
