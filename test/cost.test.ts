/**
 * The time model (passes/cost) piece by piece, with no timing: per-op work against hand counts,
 * a training graph's kernels and FLOPs, what onnxruntime removes, attribution to layers, the host
 * and refresh terms, monotonicity, the calibration cache, and the report's text. (Whether the
 * predictions match measured step times is bench/cost-model.ts's question: timings on a shared
 * machine are too noisy for unit tests.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { costReportLines } from '../bin/cost-report.js';
import { GraphBuilder } from '../models/builder.js';
import { buildCnn } from '../models/cnn.js';
import { buildMlp } from '../models/mlp.js';
import { compileModel } from '../passes/compile.js';
import { graphWork, layerIndex } from '../passes/cost/graph.js';
import { DEFAULT_PROFILE, predictTraining, type MachineProfile } from '../passes/cost/index.js';
import { graphSeconds, workSeconds } from '../passes/cost/machine.js';
import { nsSteps, refreshSeconds } from '../passes/cost/refresh.js';
import { nodeWork, singleAxisMove, type NodeShapes } from '../passes/cost/work.js';
import { readLayerRecords } from '../passes/reconstruct/record.js';
import { CALIBRATION_VERSION, machineKey, machineProfile, readCalibration, relativeLineFit, writeCalibration } from '../runtime/calibrate.js';
import { resolveDevice } from '../runtime/device.js';
import { createSession } from '../runtime/ort.js';
import type { Node } from '../src/ir/graph.js';
import { intAttr } from '../src/ir/attrs.js';
import { loadModel } from '../src/onnx/import.js';
import { float32Tensor } from '../src/onnx/tensor.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-cost-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const node = (opType: string, attrs: Node['attrs'] = []): Node => ({ name: opType, opType, domain: '', inputs: ['a', 'b', 'c'].slice(0, 3), outputs: ['y'], attrs });
const shapes = (inputs: (number[] | undefined)[], outputs: number[][]): NodeShapes => ({ inputs, outputs, inputBytes: inputs.map(() => 4), outputBytes: outputs.map(() => 4) });
const sngdSettings = (batch: number) => ({ batch, optimizer: 'sngd' as const, refreshEvery: 100 });

describe('per-op work', () => {
  it('counts 2·m·k·n per product for MatMul (batched, broadcast) and Gemm (transposes, C)', () => {
    expect(nodeWork(node('MatMul'), shapes([[2, 3, 4, 5], [5, 6]], [[2, 3, 4, 6]]))).toEqual({ kind: 'gemm', flops: 2 * 6 * 4 * 5 * 6, bytes: 0, parallelWork: 6 * 4 * 5 * 6, outputs: 6 * 4 * 6 });
    expect(nodeWork(node('MatMul'), shapes([[5], [5, 6]], [[6]])).flops).toBe(2 * 5 * 6);
    // Both operands batched: one product per batch entry, spread over the threads.
    expect(nodeWork(node('MatMul'), shapes([[6, 4, 5], [6, 5, 3]], [[6, 4, 3]]))).toMatchObject({ flops: 2 * 6 * 4 * 5 * 3, parallelWork: 4 * 5 * 3, calls: { count: 6, spread: true } });
    const gemm = node('Gemm', [intAttr('transA', 1), intAttr('transB', 1)]);
    expect(nodeWork(gemm, shapes([[7, 3], [4, 7], [4]], [[3, 4]])).flops).toBe(2 * 3 * 7 * 4 + 3 * 4);
    expect(nodeWork(node('Gemm'), shapes([[3, 7], [7, 4]], [[3, 4]])).flops).toBe(2 * 3 * 7 * 4);
  });

  it('counts Cin/g·∏k multiply-adds per Conv output and Cout/g·∏k per ConvTranspose input', () => {
    // Conv 8→16 channels, groups 2, 3×3, output 5×5, batch 4: W [16, 4, 3, 3].
    expect(nodeWork(node('Conv'), shapes([[4, 8, 5, 5], [16, 4, 3, 3]], [[4, 16, 5, 5]])).flops).toBe(2 * 4 * 16 * 25 * 4 * 9);
    // ConvTranspose 6→4 channels, 2×2, input 3×3: W [6, 4, 2, 2].
    expect(nodeWork(node('ConvTranspose'), shapes([[2, 6, 3, 3], [6, 4, 2, 2]], [[2, 4, 6, 6]])).flops).toBe(2 * 2 * 6 * 9 * 4 * 4);
  });

  it('runs a convolution as one product per image and group behind an im2col (Conv) or col2im (ConvTranspose) copy', () => {
    const grouped = node('Conv', [intAttr('group', 2)]);
    // 4 images × 2 groups; per call K = 4·3·3 patch elements × 25 outputs, in 5 rows per element.
    expect(nodeWork(grouped, shapes([[4, 8, 5, 5], [16, 4, 3, 3]], [[4, 16, 5, 5]])).calls).toEqual({ count: 8, copied: 36 * 25, rows: 36 * 5, spread: true });
    expect(nodeWork(grouped, shapes([[4, 8, 5, 5], [16, 4, 3, 3]], [[4, 16, 5, 5]])).parallelWork).toBe(8 * 36 * 25);
    // A pointwise Conv multiplies its input as it is.
    expect(nodeWork(node('Conv'), shapes([[4, 8, 5, 5], [16, 8, 1, 1]], [[4, 16, 5, 5]])).calls).toMatchObject({ copied: 0, rows: 0 });
    // A stride along the last axis spaces the patch elements: every element its own row.
    const strided = node('Conv', [{ name: 'strides', type: 7, ints: [2, 2] }]);
    expect(nodeWork(strided, shapes([[4, 8, 9, 9], [16, 8, 3, 3]], [[4, 16, 4, 4]])).calls).toEqual({ count: 4, copied: 72 * 16, rows: 72 * 16, spread: true, direct: { in: 8, out: 16 } });
    // ConvTranspose: per image Wᵀ [4·2·2, 6]·X [6, 9], col2im of the [16, 9] product in 16·3 rows, calls in sequence.
    expect(nodeWork(node('ConvTranspose'), shapes([[2, 6, 3, 3], [6, 4, 2, 2]], [[2, 4, 6, 6]])).calls).toEqual({ count: 2, copied: 16 * 9, rows: 16 * 3, spread: false });
  });

  it('counts index kernels by their scalar steps (MaxPool only with its Indices output)', () => {
    expect(nodeWork(node('ScatterElements'), shapes([[10, 20], [4, 20], [4, 20]], [[10, 20]]))).toMatchObject({ kind: 'loop', steps: 80 });
    expect(nodeWork(node('GatherElements'), shapes([[10, 20], [10, 1]], [[10, 1]]))).toMatchObject({ kind: 'loop', steps: 10 });
    const pool = { ...node('MaxPool', [{ name: 'kernel_shape', type: 7, ints: [2, 2] }]), inputs: ['x'], outputs: ['y', 'i'] };
    expect(nodeWork(pool, shapes([[2, 3, 8, 8]], [[2, 3, 4, 4], [2, 3, 4, 4]]))).toMatchObject({ kind: 'loop', steps: 96 * 4 });
    expect(nodeWork({ ...pool, outputs: ['y'] }, shapes([[2, 3, 8, 8]], [[2, 3, 4, 4]])).kind).toBe('memory');
  });

  it('charges other ops the bytes they move, and views nothing', () => {
    expect(nodeWork(node('Add'), shapes([[10, 20], [10, 20]], [[10, 20]]))).toEqual({ kind: 'memory', flops: 200, bytes: 4 * (200 + 200 + 200) });
    expect(nodeWork(node('Relu'), shapes([[10, 20]], [[10, 20]]))).toEqual({ kind: 'memory', flops: 200, bytes: 4 * (200 + 200) });
    expect(nodeWork(node('Reshape'), shapes([[10, 20], [2]], [[20, 10]]))).toMatchObject({ kind: 'view', bytes: 0 });
  });

  it("counts a broadcasting elementwise op's spans: runs of the output along which every input is contiguous or repeated", () => {
    const spans = (inputs: number[][], out: number[], op = 'Mul') => nodeWork({ ...node(op), inputs: inputs.map((_, i) => `x${i}`) }, shapes(inputs, [out])).spans ?? 1;
    expect(spans([[10, 20], [20]], [10, 20])).toBe(10);
    expect(spans([[10, 20], [10, 1]], [10, 20])).toBe(10);
    expect(spans([[50, 8, 28, 28], [1, 8, 1, 1]], [50, 8, 28, 28])).toBe(400);
    // Same shapes, or a scalar: one span (no extra cost).
    expect(spans([[10, 20], [10, 20]], [10, 20])).toBe(1);
    expect(spans([[10, 20], [1]], [10, 20])).toBe(1);
    // A trailing axis of 1 is walked element by element, even against a scalar (measured: [6400, 1] × [1] costs 6400 spans).
    expect(spans([[6400, 1], [1]], [6400, 1])).toBe(6400);
    // Where's three inputs; a variadic Sum passes once per extra input.
    expect(spans([[10, 1], [10, 20], [20]], [10, 20], 'Where')).toBe(10);
    expect(spans([[10, 20], [20], [20]], [10, 20], 'Sum')).toBe(20);
  });

  it('counts the spans of layout kernels and the MlasTranspose calls of a Transpose moving one axis', () => {
    const withConsts = (inputs: number[][], outputs: number[][], constants: (number[] | undefined)[]): NodeShapes => ({ ...shapes(inputs, outputs), constants });
    const slice = { ...node('Slice'), inputs: ['x', 's', 'e', 'a', 'st'] };
    // Cutting the last axis: one span per row; cutting an outer axis: spans of the whole inner block.
    expect(nodeWork(slice, withConsts([[50, 3, 9, 11], [1], [1], [1], [1]], [[50, 3, 8, 11]], [undefined, [1], [9], [2], [1]]))).toMatchObject({ kind: 'copy', loop: 'slice', spans: 150 });
    expect(nodeWork(slice, withConsts([[50, 3, 9, 11], [1], [1], [1], [1]], [[50, 3, 9, 10]], [undefined, [1], [11], [3], [1]]))).toMatchObject({ spans: 50 * 3 * 9 });
    // A negative step on the last axis copies element by element.
    expect(nodeWork(slice, withConsts([[50, 3, 9, 8], [2], [2], [2], [2]], [[50, 3, 8, 8]], [undefined, [1, -1], [9, -9], [2, 3], [1, -1]]))).toMatchObject({ spans: 50 * 3 * 8, steps: 50 * 3 * 8 * 8 });
    expect(nodeWork(node('Pad'), shapes([[50, 3, 8, 8], [8]], [[50, 3, 9, 11]]))).toMatchObject({ kind: 'copy', loop: 'pad', spans: 50 * 3 * 9 });
    const concat = { ...node('Concat', [intAttr('axis', 1)]), inputs: ['a', 'b'] };
    expect(nodeWork(concat, shapes([[400, 16], [400, 1]], [[400, 17]]))).toMatchObject({ kind: 'copy', loop: 'concat', spans: 800 });
    const transpose = (perm: number[], x: number[], y: number[]) => nodeWork({ ...node('Transpose', [{ name: 'perm', type: 7, ints: perm }]), inputs: ['x'] }, shapes([x], [y]));
    // One axis of single floats moved: one MlasTranspose call per index of the axes outside the move.
    expect(transpose([0, 2, 3, 1], [50, 8, 2, 8], [50, 2, 8, 8])).toMatchObject({ kind: 'copy', transposeCalls: 50, spans: 0 });
    expect(transpose([0, 1, 3, 2], [50, 2, 6, 10], [50, 2, 10, 6])).toMatchObject({ transposeCalls: 100 });
    expect(transpose([1, 0], [400, 16], [16, 400])).toMatchObject({ transposeCalls: 1 });
    // Blocks of 8 floats: a strided copy, one span per block; no single axis moved: element by element.
    expect(transpose([0, 2, 1, 3], [50, 8, 2, 8], [50, 2, 8, 8])).toMatchObject({ loop: 'strided', spans: 800 });
    expect(transpose([2, 1, 0], [50, 8, 16], [16, 8, 50])).toMatchObject({ spans: 0, steps: 6400 });
    expect(singleAxisMove([0, 2, 3, 1])).toEqual([1, 3]);
    expect(singleAxisMove([0, 3, 1, 2])).toEqual([3, 1]);
    expect(singleAxisMove([2, 1, 0])).toBeUndefined();
    expect(singleAxisMove([0, 1, 2])).toBeUndefined();
  });

  it('times a product below the threading threshold at the single-thread rate, above it with the pool overhead', () => {
    const p: MachineProfile = { ...DEFAULT_PROFILE, gemmFlops: 1e11, gemmFlopsSingle: 5e10, poolWake: 3e-6, node: 1e-6, gemmOut: 0 };
    expect(workSeconds({ kind: 'gemm', flops: 2 * 32 ** 3, bytes: 0, parallelWork: 32 ** 3 }, p)).toBeCloseTo(1e-6 + (2 * 32 ** 3) / 5e10, 12);
    expect(workSeconds({ kind: 'gemm', flops: 2 * 64 ** 3, bytes: 0, parallelWork: 64 ** 3 }, p)).toBeCloseTo(1e-6 + 3e-6 + (2 * 64 ** 3) / 1e11, 12);
    // Large elementwise kernels wake the pool; small ones run on the calling thread.
    expect(workSeconds({ kind: 'memory', flops: 0, bytes: 4e6 }, p)).toBeCloseTo(1e-6 + 3e-6 + 4e6 / p.memoryBytes, 12);
    expect(workSeconds({ kind: 'memory', flops: 0, bytes: 4e3 }, p)).toBeCloseTo(1e-6 + 4e3 / p.memoryBytes, 12);
    // Each result element costs gemmOut (on the pool; threads× on one thread).
    const q = { ...p, gemmOut: 1e-9, threads: 2 };
    expect(workSeconds({ kind: 'gemm', flops: 2 * 64 ** 3, bytes: 0, parallelWork: 64 ** 3, outputs: 64 * 64 }, q)).toBeCloseTo(1e-6 + 3e-6 + (2 * 64 ** 3) / 1e11 + 64 * 64 * 1e-9, 12);
    expect(workSeconds({ kind: 'gemm', flops: 2 * 32 ** 3, bytes: 0, parallelWork: 32 ** 3, outputs: 32 * 32 }, q)).toBeCloseTo(1e-6 + (2 * 32 ** 3) / 5e10 + 2 * 32 * 32 * 1e-9, 12);
    // Conv calls spread over the threads, each single-threaded; ConvTranspose calls in sequence.
    const calls = { count: 8, copied: 1000, rows: 100, spread: true };
    const perCall = p.gemmCall + 2e5 / p.gemmFlopsSingle + 1000 * p.im2col + 100 * p.im2colRow;
    expect(workSeconds({ kind: 'gemm', flops: 8 * 2e5, bytes: 0, parallelWork: 1e5, calls }, { ...p, threads: 2 })).toBeCloseTo(1e-6 + 3e-6 + 4 * perCall, 12);
    expect(workSeconds({ kind: 'gemm', flops: 8 * 2e5, bytes: 0, parallelWork: 1e5, calls: { ...calls, spread: false } }, p)).toBeCloseTo(1e-6 + 8 * (perCall + 3e-6 + 2e5 / 1e11 - 2e5 / p.gemmFlopsSingle), 12);
    // A 2-D Conv whose output channels fill onnxruntime's NCHWc blocks convolves directly, without im2col.
    const direct = { ...calls, direct: { in: 8, out: 32 } };
    expect(workSeconds({ kind: 'gemm', flops: 8 * 2e5, bytes: 0, parallelWork: 1e5, calls: direct }, { ...p, nchwcBlock: 16 })).toBeCloseTo(1e-6 + 3e-6 + (8 * 2e5) / p.nchwcFlops, 12);
    expect(workSeconds({ kind: 'gemm', flops: 8 * 2e5, bytes: 0, parallelWork: 1e5, calls: direct }, { ...p, nchwcBlock: 64, threads: 2 })).toBeCloseTo(1e-6 + 3e-6 + 4 * perCall, 12);
  });
});

describe('a training graph', () => {
  const mlp = () => buildMlp({ layers: [10, 6, 3] });
  const records = readLayerRecords(compileModel(mlp(), { side: 'weight' }).model);

  it('binds the batch, and its products are the forward, ∂W and the needed ∂x of each layer', () => {
    const plain = compileModel(mlp(), { loss: 'ce', l2: true, fisher: false });
    const w = graphWork(plain.train!, { batch: 8 }, layerIndex(records));
    expect(w.nodes.filter((n) => n.unknownShape)).toEqual([]);
    const gemm = w.nodes.filter((n) => !n.skipped && n.work.kind === 'gemm');
    // fc1: 2·8·10·6 + bias 8·6 forward, ∂W 2·8·6·10 (no ∂x of the input); fc2: 2·8·6·3 + 8·3, ∂W and ∂x 2·8·3·6 each.
    expect(gemm.reduce((a, n) => a + n.work.flops, 0)).toBe(1008 + 960 + 312 + 288 + 288);
    expect(Object.fromEntries(['fc1', 'fc2'].map((l) => [l, gemm.filter((n) => n.layer === l).length]))).toEqual({ fc1: 2, fc2: 3 });
    // Gradients leave through Identity nodes, which onnxruntime removes.
    expect(w.nodes.filter((n) => n.node.opType === 'Identity').every((n) => n.skipped === 'eliminated')).toBe(true);
  });

  it("drops the L2 penalty's repeated W̃'·P, fuses transposes into products, and gives each layer its Fisher nodes", () => {
    const sngd = compileModel(mlp(), { loss: 'ce', l2: true, side: 'weight' });
    const w = graphWork(sngd.train!, { batch: 8 }, layerIndex(readLayerRecords(sngd.model)));
    const byName = (name: string) => w.nodes.find((n) => n.node.name === name)!;
    expect(byName('l2/MatMul').skipped).toBe('duplicate');
    expect(byName('stat/fc1/Transpose').skipped).toBe('fused');
    expect(byName('stat/fc1/MatMul')).toMatchObject({ layer: 'fc1', work: { flops: 2 * 11 * 8 * 11 } });
    expect(byName('sngd/fc2/fisher')).toMatchObject({ layer: 'fc2', work: { flops: 2 * 3 * 7 * 7 } });
    expect(byName('sngd/fc2/fisher/grad/MatMul').layer).toBe('fc2');
    // Statistics and gradients copied out: 11² + 6·11 floats for fc1.
    expect(w.outputBytesByLayer.get('fc1')).toBe(4 * (11 * 11 + 6 * 11));
  });

  it('times a run as its fixed costs plus its kernels, which split into overhead, FLOP and memory time', () => {
    const sngd = compileModel(mlp(), { loss: 'ce', l2: true, side: 'weight' });
    const w = graphWork(sngd.train!, { batch: 8 }, layerIndex(readLayerRecords(sngd.model)));
    const p = DEFAULT_PROFILE;
    const g = graphSeconds(w, p);
    const running = w.nodes.filter((n) => !n.skipped);
    expect(g.io).toBeCloseTo(p.run + w.inputs * p.input + w.outputs * p.output + w.outputBytes * p.outputByte, 15);
    expect(g.seconds).toBeCloseTo(g.io + running.reduce((a, n) => a + workSeconds(n.work, p), 0), 15);
    expect(g.seconds).toBeCloseTo(g.io + g.overhead + g.gemm + g.memory, 15);
    expect([g.nodes, g.skipped]).toEqual([running.length, w.nodes.length - running.length]);
    const threaded = running.filter((n) => n.work.kind === 'gemm' && n.work.parallelWork! >= p.gemmThreadWork).length;
    expect(g.overhead).toBeCloseTo(running.length * p.node + threaded * p.poolWake, 15);
  });

  it('folds constant subgraphs and Shape of a statically shaped value', () => {
    const b = new GraphBuilder('fold');
    const x = b.input('x', 'float32', ['N', 4]);
    const c = b.op('Add', [b.init('c1', float32Tensor([4], [1, 2, 3, 4])), b.init('c2', float32Tensor([4], [1, 1, 1, 1]))]);
    const s = b.op('Shape', [c]);
    const y = b.op('Reshape', [b.op('Add', [x, c]), b.op('Concat', [b.op('Shape', [x]), s], { axis: 0 })]);
    b.output(y, 'float32');
    const w = graphWork(b.build(), { batch: 3 });
    expect(w.nodes.map((n) => [n.node.opType, n.skipped ?? 'runs'])).toEqual([['Add', 'constant'], ['Shape', 'constant'], ['Add', 'runs'], ['Shape', 'runs'], ['Concat', 'runs'], ['Reshape', 'runs']]);
    expect(w.nodes[2]!.work.bytes).toBe(4 * (12 + 4 + 12));
  });

  it('runs about as many kernels as onnxruntime keeps after optimizing (MLP and CNN, within 15 %)', async () => {
    for (const model of [buildMlp({ layers: [784, 80, 80, 10] }), buildCnn()]) {
      for (const fisher of [false, true]) {
        const c = compileModel(model, { loss: 'ce', l2: true, fisher });
        const ours = graphWork(c.train!, { batch: 16 }).nodes.filter((n) => !n.skipped).length;
        const file = path.join(dir, 'optimized.onnx');
        const s = await createSession(c.train!, { ...resolveDevice('cpu').sessionOptions, optimizedModelFilePath: file } as never);
        await s.release();
        // NCHWc layout conversions are onnxruntime's own additions.
        const theirs = loadModel(file).graph.nodes.filter((n) => !n.opType.startsWith('Reorder')).length;
        expect(Math.abs(ours - theirs) / theirs, `${model.graph.name} fisher=${fisher}: ${ours} vs ${theirs}`).toBeLessThan(0.15);
      }
    }
  });
});

describe('step predictions', () => {
  const mlp = () => buildMlp({ layers: [64, 32, 10] });

  it('adds the host EMA, finite checks and update to the graph, and the refresh over T', () => {
    const p = DEFAULT_PROFILE;
    const cost = predictTraining(mlp(), { loss: 'ce', l2: true }, sngdSettings(16), p);
    const s = cost.sngd;
    expect(s.seconds).toBeCloseTo(s.graphPerStep + s.host + s.refresh.seconds / 100, 15);
    // Host: fixed + per parameter tensor and element (finite, SGD, snapshot share) + per Fisher
    // layer and statistic element (finite, EMA, snapshot share).
    const params = 32 * 65 + 10 * 33;
    const stats = 65 ** 2 + 33 ** 2;
    const perParam = p.host.finite + p.host.sgd + (4 * p.host.copyByte) / 10;
    const perStat = p.host.finite + p.host.ema + (8 * p.host.copyByte) / 10;
    expect(s.host).toBeCloseTo(p.host.step + 2 * p.host.param + params * perParam + 2 * p.host.layer + stats * perStat + 16 * 10 * p.host.finite, 15);
    expect(cost.plain.refreshPerStep).toBe(0);
    // Each layer's time is its kernels, host loops and refresh share; the rest is 'other'.
    expect(s.layers.reduce((a, l) => a + l.seconds, 0) + s.other).toBeCloseTo(s.seconds, 15);
    expect(cost.layers.map((l) => [l.name, l.side, l.fisher])).toEqual([['fc1', 'weight', 'dense'], ['fc2', 'weight', 'dense']]);
    expect(cost.ratio).toBeCloseTo(s.seconds / cost.plain.seconds, 12);
  });

  it('grows with the batch, with the Fisher dimension, and with the refresh frequency', () => {
    const at = (batch: number, layers = [64, 32, 10], refreshEvery = 100) => predictTraining(buildMlp({ layers }), { loss: 'ce', l2: true }, { ...sngdSettings(batch), refreshEvery }, DEFAULT_PROFILE);
    const [small, large] = [at(8), at(256)];
    expect(large.plain.seconds).toBeGreaterThan(small.plain.seconds);
    expect(large.sngd.seconds).toBeGreaterThan(small.sngd.seconds);
    // The weight side's cost does not grow with the batch: SNGD's overhead is amortized.
    expect(large.ratio).toBeLessThan(small.ratio);
    const wide = at(8, [256, 32, 10]);
    expect(wide.layers[0]!.sngd).toBeGreaterThan(small.layers[0]!.sngd);
    expect(wide.sngd.host).toBeGreaterThan(small.sngd.host);
    expect(at(8, [64, 32, 10], 10).sngd.seconds).toBeGreaterThan(small.sngd.seconds);
    for (const c of [small, large, wide]) expect(c.sngd.seconds).toBeGreaterThan(c.plain.seconds);
  });

  it('grows with the number of parameter tensors at fixed FLOPs: feeds, gradient fetches and the host per tensor', () => {
    // y = x ⊙ a with a: one parameter of 64 elements, or 32 parameters of two concatenated (a
    // parameter has more than one element: passes/training trainableTensors).
    const scaled = (parts: number) => {
      const b = new GraphBuilder('scaled');
      const x = b.input('x', 'float32', ['N', 64]);
      const a = parts === 1 ? b.init('a', float32Tensor([64], new Float32Array(64).fill(1))) : b.op('Concat', Array.from({ length: parts }, (_, i) => b.init(`a${i}`, float32Tensor([64 / parts], new Float32Array(64 / parts).fill(1)))), { axis: 0 });
      b.output(b.op('Mul', [x, a], {}, { output: 'y' }), 'float32', ['N', 64]);
      return predictTraining(b.build(), { loss: 'mse', l2: true }, { batch: 16, optimizer: 'sgd', refreshEvery: 100 }, DEFAULT_PROFILE).plain;
    };
    const [one, many] = [scaled(1), scaled(32)];
    // The same parameter elements and products; 31 more tensors fed, fetched and updated.
    expect(many.graph.flops).toBe(one.graph.flops);
    expect(many.host - one.host).toBeCloseTo(31 * DEFAULT_PROFILE.host.param, 15);
    expect(many.graph.io - one.graph.io).toBeCloseTo(31 * (DEFAULT_PROFILE.input + DEFAULT_PROFILE.output), 15);
    expect(many.seconds).toBeGreaterThan(one.seconds + 31 * (DEFAULT_PROFILE.host.param + DEFAULT_PROFILE.input + DEFAULT_PROFILE.output));
  });

  it('statistics every k steps fold fewer EMAs and run the lean graph on the other steps', () => {
    const every = (k: number) => predictTraining(mlp(), { loss: 'ce', l2: true }, { ...sngdSettings(16), statEvery: k }, DEFAULT_PROFILE).sngd;
    const [one, ten] = [every(1), every(10)];
    expect(ten.host).toBeLessThan(one.host);
    expect(ten.graphPerStep).toBeLessThan(one.graphPerStep);
  });

  it('a Nyström layer costs d̃·(k+1) per EMA update and a host refresh instead of a dense root', () => {
    const model = () => buildMlp({ layers: [300, 32, 10] });
    const dense = predictTraining(model(), { loss: 'ce', l2: true }, sngdSettings(16), DEFAULT_PROFILE);
    const ny = predictTraining(model(), { loss: 'ce', l2: true, maxFisherDim: 100, nystromRank: 16 }, sngdSettings(16), DEFAULT_PROFILE);
    expect(ny.layers.map((l) => l.fisher)).toEqual(['nystrom k=16', 'dense']);
    expect(ny.layers[0]!.sngd).toBeLessThan(dense.layers[0]!.sngd);
    expect(ny.sngd.refresh.seconds).toBeLessThan(dense.sngd.refresh.seconds);
    expect(ny.sngd.host).toBeLessThan(dense.sngd.host);
  });
});

describe('refresh', () => {
  it("counts the scaled Newton–Schulz steps from the damping's spectral bound", () => {
    // Stronger damping, better conditioned: fewer steps; each step multiplies small eigenvalues ~6.7×.
    expect(nsSteps(1e-2, 100)).toBeLessThan(nsSteps(1e-4, 100));
    expect(nsSteps(1e-4, 785)).toBeGreaterThanOrEqual(6);
    expect(nsSteps(1e-4, 785)).toBeLessThanOrEqual(10);
    expect(nsSteps(1e-12, 10, 1e-4, 12)).toBe(12);
  });

  it('grows like d̃³ for dense roots', () => {
    const rec = (d: number) => readLayerRecords(compileModel(buildMlp({ layers: [d - 1, 8] }), {}).model);
    const p: MachineProfile = { ...DEFAULT_PROFILE, node: 0, run: 0, input: 0, output: 0, poolWake: 0, host: { ...DEFAULT_PROFILE.host, step: 0 } };
    const [a, b] = [refreshSeconds(rec(400), p, { epsRel: 1e-4, momentum: false }), refreshSeconds(rec(800), p, { epsRel: 1e-4, momentum: false })];
    expect(b.seconds / a.seconds).toBeGreaterThan(6);
    expect(b.seconds / a.seconds).toBeLessThan(9);
  });
});

describe('calibration cache', () => {
  const file = path.join(dir, 'cache', 'calibration.json');
  const measured: MachineProfile = { ...DEFAULT_PROFILE, calibrated: true, date: '2026-01-01T00:00:00.000Z', machine: machineKey(), gemmFlops: 123e9, host: { ...DEFAULT_PROFILE.host, ema: 3.5e-9 } };

  it('round-trips a profile for this machine and ignores one from another', async () => {
    expect(readCalibration(file)).toBeUndefined();
    writeCalibration(measured, file);
    expect(readCalibration(file)).toEqual(measured);
    expect(await machineProfile({ calibrate: false, file })).toEqual(measured);
    const other = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...other, key: 'another machine' }));
    expect(readCalibration(file)).toBeUndefined();
    expect(await machineProfile({ calibrate: false, file })).toBe(DEFAULT_PROFILE);
    fs.writeFileSync(file, 'not json');
    expect(readCalibration(file)).toBeUndefined();
    // A cache of an older format lacks the newer rates: measured again, not filled with defaults.
    fs.writeFileSync(file, JSON.stringify({ ...other, version: CALIBRATION_VERSION - 1 }));
    expect(readCalibration(file)).toBeUndefined();
    const { version: _, ...unversioned } = other;
    fs.writeFileSync(file, JSON.stringify(unversioned));
    expect(readCalibration(file)).toBeUndefined();
  });

  it('measures the per-feed, per-fetch, span, MlasTranspose-call and per-parameter rates, and caches them', async () => {
    const fresh = path.join(dir, 'fresh', 'calibration.json');
    const p = await machineProfile({ calibrate: true, file: fresh, sessionOptions: resolveDevice('cpu').sessionOptions });
    expect(p.calibrated).toBe(true);
    const rates = { input: p.input, output: p.output, transposeCall: p.transposeCall, ...p.span, param: p.host.param, layer: p.host.layer, step: p.host.step };
    for (const [name, v] of Object.entries(rates)) expect(Number.isFinite(v) && v >= 0, name).toBe(true);
    // Each of these is a difference of tens of µs or more in its microbenchmark (over 100 feeds or
    // fetches, 100 MlasTranspose calls, 1600 spans of Pad or of a strided Transpose, 1600 broadcast
    // spans, 30 parameter tensors): above the noise of a busy machine, so positive.
    for (const name of ['input', 'output', 'transposeCall', 'broadcast', 'pad', 'strided', 'param', 'step'] as const) expect(rates[name], name).toBeGreaterThan(0);
    expect(readCalibration(fresh)).toEqual(p);
  }, 120_000);

  it('fits the MatMul line by relative error (an exact line is recovered; a negative intercept refits through 0)', () => {
    const x = [1e6, 4e6, 1.6e7, 6.4e7];
    expect(relativeLineFit(x, x.map((v) => 2e-6 + v / 1e11)).intercept).toBeCloseTo(2e-6, 12);
    expect(relativeLineFit(x, x.map((v) => 2e-6 + v / 1e11)).slope).toBeCloseTo(1e-11, 20);
    expect(relativeLineFit(x, x.map((v) => -1e-6 + v / 1e11)).intercept).toBe(0);
  });
});

describe('the report', () => {
  const cost = (profile: MachineProfile) => predictTraining(buildMlp({ layers: [64, 32, 10] }), { loss: 'ce', l2: true }, sngdSettings(32), profile);

  it("prints each layer's side, Fisher form and milliseconds, the totals and whether the machine is calibrated", () => {
    const c = cost(DEFAULT_PROFILE);
    const text = costReportLines(c).join('\n');
    const ms = (s: number) => (s * 1e3).toFixed(s < 0.01 ? 3 : 2);
    for (const l of c.layers) expect(text).toMatch(new RegExp(`${l.name}\\s+Gemm\\s+weight\\s+dense\\s+${l.fisherDim}\\s+${ms(l.plain)}\\s+${ms(l.sngd)}`));
    expect(text).toMatch(new RegExp(`total\\s+${ms(c.plain.seconds)}\\s+${ms(c.sngd.seconds)}\\s+${(c.ratio).toFixed(1)}×`));
    expect(text).toContain('NOT calibrated');
    expect(costReportLines(cost({ ...DEFAULT_PROFILE, calibrated: true, date: '2026-01-02T00:00:00Z', machine: 'test cpu' })).join('\n')).toContain('calibrated 2026-01-02 on test cpu');
  });

  it('sngd-compile --report --no-calibrate prints it with the default rates', async () => {
    const { spawnSync } = await import('node:child_process');
    const { createRequire } = await import('node:module');
    const { pathToFileURL } = await import('node:url');
    const root = path.resolve(import.meta.dirname, '..');
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;
    const { saveModel } = await import('../src/onnx/export.js');
    saveModel(path.join(dir, 'mlp.onnx'), buildMlp({ layers: [20, 8, 4] }));
    const r = spawnSync(process.execPath, ['--import', tsx, path.join(root, 'bin', 'sngd-compile.ts'), 'mlp.onnx', '-o', 'out', '--report', '--no-calibrate', '--batch-size', '16'], { cwd: dir, encoding: 'utf8', env: { ...process.env, SNGD_CACHE_DIR: path.join(dir, 'no-cache') } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/predicted time per training step at batch 16, T = 100/);
    expect(r.stdout).toMatch(/fc1\s+Gemm\s+weight\s+dense\s+21/);
    expect(r.stdout).toContain('NOT calibrated');
    expect(fs.existsSync(path.join(dir, 'no-cache'))).toBe(false);
  });
});
