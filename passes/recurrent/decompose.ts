/**
 * decomposeRecurrent: rewrites every LSTM, GRU and RNN node into its time steps unrolled in
 * primitive ops (MatMul, Add, Mul, Sub, Split, Concat, Where, Sigmoid, Tanh, …), all of which have
 * gradient rules, so the autodiff driver differentiates a recurrent model with no recurrent rule.
 * The sequence length must be static (a symbolic one can be fixed with `dims`). Weights keep their
 * names and layouts: a parameter trained on the unrolled graph drops back into the original node.
 *
 * ONNX semantics (per direction; x_t [B, I]; W [G·H, I], R [G·H, H] and the biases Wb, Rb [G·H]
 * of that direction; f, g, h its activations; clip(v) = min(max(v, −c), c) where `clip` = c is
 * given, applied to every activation input but LSTM's h(C_t)):
 *
 *   RNN   H_t = f(x_t·Wᵀ + H_{t−1}·Rᵀ + Wb + Rb)
 *   GRU   gates z, r, h (in that order in W, R, B)
 *         z = f(x·Wzᵀ + H_{t−1}·Rzᵀ + Wbz + Rbz)      r = f(x·Wrᵀ + H_{t−1}·Rrᵀ + Wbr + Rbr)
 *         linear_before_reset = 0:  ĥ = g(x·Whᵀ + (r ⊙ H_{t−1})·Rhᵀ + Rbh + Wbh)
 *         linear_before_reset = 1:  ĥ = g(x·Whᵀ + r ⊙ (H_{t−1}·Rhᵀ + Rbh) + Wbh)
 *         H_t = (1 − z) ⊙ ĥ + z ⊙ H_{t−1}  = ĥ + z ⊙ (H_{t−1} − ĥ)
 *   LSTM  gates i, o, f, c (in that order), peepholes P = [Pi, Po, Pf]
 *         i = f(x·Wiᵀ + H_{t−1}·Riᵀ + Pi ⊙ C_{t−1} + Wbi + Rbi)
 *         f = f(x·Wfᵀ + H_{t−1}·Rfᵀ + Pf ⊙ C_{t−1} + Wbf + Rbf)     (input_forget = 1: f = 1 − i)
 *         c = g(x·Wcᵀ + H_{t−1}·Rcᵀ + Wbc + Rbc)
 *         C_t = f ⊙ C_{t−1} + i ⊙ c
 *         o = f(x·Woᵀ + H_{t−1}·Roᵀ + Po ⊙ C_t + Wbo + Rbo)
 *         H_t = o ⊙ h(C_t)
 *
 * Directions: 'forward' runs t = 0 … T−1, 'reverse' t = T−1 … 0, 'bidirectional' both (direction
 * 0 forward, 1 reverse; W, R, B, P, the initial states and the outputs stacked on that axis). Y
 * [T, D, B, H] holds H_t at its own time index t in either direction; Y_h and Y_c [D, B, H] the
 * last state each direction reached. Missing initial states are zeros, a missing B is zero.
 *
 * sequence_lens (L_b per batch row): a step t ≥ L_b leaves row b's state unchanged and writes 0 to
 * Y. Forward, the state is so held after step L_b − 1; reverse, the steps T−1 … L_b do nothing and
 * the run starts at L_b − 1, i.e. it reverses only the valid prefix, as onnxruntime does. A row
 * with L_b = 0 ends in state 0 whatever its initial state (onnxruntime again); onnxruntime
 * rejects L_b > T at run time, the unrolled graph treats it as T.
 *
 * layout = 1 (X [B, T, I], states [B, D, H], Y [B, T, D, H]) is transposed to layout 0 and back.
 *
 * The input projection x_t·Wᵀ + biases is one MatMul over all steps, split per step afterwards;
 * states keep a leading axis of 1 ([1, B, H]) so Y and Y_h are plain Concats.
 */
import { SngdError } from '../../src/errors.js';
import { attrFloat, attrFloats, attrInt, attrString, attrStrings } from '../../src/ir/attrs.js';
import { Emitter } from '../../src/ir/emit.js';
import { cloneModel, defaultOpset, isDefaultDomain, NameAuthority, type Dim, type Model, type Node } from '../../src/ir/graph.js';
import { float32Tensor, int64Tensor } from '../../src/onnx/tensor.js';
import { analyzeShapes } from '../../src/shape/index.js';
import { emitActivation, resolveActivations, scalarCache, type Activation } from './activations.js';

export const RECURRENT_OPS = new Set(['LSTM', 'GRU', 'RNN']);

export interface DecomposeOptions {
  /**
   * Sizes for symbolic dims, e.g. `{ T: 7 }`: every graph input, output and value_info dim so
   * named becomes that number (so onnxruntime rejects feeds of another size). Unrolling needs the
   * sequence length of each recurrent node to be static.
   */
  dims?: Record<string, number>;
}

/** Gates per op, and activations per direction. */
const GATES: Record<string, number> = { LSTM: 4, GRU: 3, RNN: 1 };
const DEFAULT_ACTIVATIONS: Record<string, string[]> = { LSTM: ['Sigmoid', 'Tanh', 'Tanh'], GRU: ['Sigmoid', 'Tanh'], RNN: ['Tanh'] };

export function hasRecurrent(model: Model): boolean {
  return model.graph.nodes.some(isRecurrent);
}

const isRecurrent = (n: Node): boolean => isDefaultDomain(n.domain) && RECURRENT_OPS.has(n.opType);

/** Returns a copy of `model` with every LSTM/GRU/RNN node unrolled (a plain copy if it has none). */
export function decomposeRecurrent(model: Model, opts: DecomposeOptions = {}): Model {
  const out = cloneModel(model);
  if (!hasRecurrent(model)) return out;
  const g = out.graph;
  if (opts.dims && Object.keys(opts.dims).length > 0) bindDims(out, opts.dims);
  const opset = defaultOpset(out);
  const where = model.source ? `${model.source}: ` : '';
  if (opset < 13) throw new SngdError(`${where}unrolling recurrent nodes needs opset 13 or later (the model is opset ${opset}); upgrade it first`);
  const { infos } = analyzeShapes(out);
  const names = new NameAuthority(g);
  const original = g.nodes;
  g.nodes = [];
  for (const node of original) {
    if (!isRecurrent(node)) {
      g.nodes.push(node);
      continue;
    }
    const b = new Emitter(g, names, node.name || node.opType);
    unroll(node, b, {
      opset,
      shape: (v) => infos.get(v)?.shape,
      elemType: (v) => infos.get(v)?.elemType,
      fail: (m) => {
        throw new SngdError(`${where}cannot unroll node '${node.name}' (${node.opType}): ${m}`);
      },
    });
  }
  return out;
}

/** Replaces named symbolic dims by numbers in the graph's declared inputs, outputs and value_info. */
function bindDims(m: Model, dims: Record<string, number>): void {
  const g = m.graph;
  const bind = (shape: Dim[] | undefined) => shape?.map((d) => (typeof d === 'string' && Object.hasOwn(dims, d) ? dims[d]! : d));
  g.inputs = g.inputs.map((v) => ({ ...v, shape: bind(v.shape) }));
  g.outputs = g.outputs.map((v) => ({ ...v, shape: bind(v.shape) }));
  g.valueInfo = new Map([...g.valueInfo].map(([k, v]) => [k, { ...v, shape: bind(v.shape) }]));
}

interface Env {
  opset: number;
  shape(v: string): Dim[] | undefined;
  elemType(v: string): number | undefined;
  fail(message: string): never;
}

/** The per-direction view of a node's parameters. */
interface Direction {
  reverse: boolean;
  acts: Activation[];
  /** x_t·Wᵀ + input-side bias, per step: [1, B, G·H]. */
  xs: string[];
  /** Rᵀ [H, G·H] (GRU with linear_before_reset = 0: [Rz; Rr]ᵀ [H, 2H] and Rhᵀ [H, H]). */
  rt: string;
  rht?: string;
  /** Recurrent-side bias added per step (GRU with linear_before_reset = 1 only) [G·H]. */
  rb?: string;
  /** Peepholes Pi, Po, Pf [H]. */
  p?: [string, string, string];
  h?: string;
  c?: string;
}

function unroll(node: Node, b: Emitter, env: Env): void {
  const fail: (message: string) => never = env.fail;
  const op = node.opType;
  const G = GATES[op]!;
  const layout = attrInt(node, 'layout', 0);
  const direction = attrString(node, 'direction', 'forward');
  if (!['forward', 'reverse', 'bidirectional'].includes(direction)) fail(`unknown direction '${direction}'`);
  if (layout !== 0 && layout !== 1) fail(`unknown layout ${layout}`);
  const D = direction === 'bidirectional' ? 2 : 1;
  const [X, W, R, bias = '', lens = '', h0 = '', c0 = '', peep = ''] = node.inputs;
  if (!X || !W || !R) fail('X, W and R are required');
  const xs = env.shape(X!);
  if (!xs || xs.length !== 3) fail(`the rank of X ('${X}') must be known to be 3`);
  // The scalars and zeros emitted here are float32, as are onnxruntime's recurrent kernels' usual inputs.
  const elemType = env.elemType(X!);
  if (elemType !== undefined && elemType !== 1) fail(`X has element type ${elemType}; only float32 is unrolled`);
  const T = xs[layout === 0 ? 0 : 1]!;
  if (typeof T !== 'number') fail(`its sequence length '${T}' is symbolic: unrolling needs a static length (fix the dim, e.g. decomposeRecurrent(model, { dims: { ${T}: … } }))`);
  const H = attrInt(node, 'hidden_size') ?? env.shape(R!)?.[2];
  if (typeof H !== 'number') fail('hidden_size is neither given nor readable from R');
  const clip = attrFloat(node, 'clip');
  const inputForget = op === 'LSTM' && attrInt(node, 'input_forget', 0) !== 0;
  const lbr = op === 'GRU' && attrInt(node, 'linear_before_reset', 0) !== 0;
  const nActs = DEFAULT_ACTIVATIONS[op]!.length;
  const actNames = attrStrings(node, 'activations') ?? Array.from({ length: D }, () => DEFAULT_ACTIVATIONS[op]!).flat();
  if (actNames.length !== nActs * D) fail(`activations lists ${actNames.length} functions; ${op} with ${D} direction(s) takes ${nActs * D}`);
  const acts = resolveActivations(actNames, attrFloats(node, 'activation_alpha') ?? [], attrFloats(node, 'activation_beta') ?? []);
  if (typeof acts === 'string') fail(acts);
  if (G === 4 && peep && !env.shape(peep)) fail('the shape of P is unknown');

  const scalar = scalarCache(b);
  const intsMade = new Map<string, string>();
  const ints = (v: number[]): string => {
    let name = intsMade.get(v.join());
    if (!name) intsMade.set(v.join(), (name = b.init('i', int64Tensor([v.length], v))));
    return name;
  };
  const split = (v: string, axis: number, sizes: number[]) => (sizes.length === 1 ? [v] : b.opN('Split', [v, ints(sizes)], sizes.length, { axis }));
  const clipped = (v: string) => (clip === undefined ? v : b.op('Clip', [v, scalar(-clip), scalar(clip)]));
  const act = (f: Activation, v: string) => emitActivation(b, f, clipped(v), scalar);
  const add = (a: string, c: string | undefined) => (c ? b.op('Add', [a, c]) : a);

  // Everything in layout 0: X [T, B, I], states [D, B, H].
  const x = layout === 0 ? X! : b.op('Transpose', [X!], { perm: [1, 0, 2] });
  const state = (v: string) => (!v ? undefined : layout === 0 ? v : b.op('Transpose', [v], { perm: [1, 0, 2] }));
  /** Direction slices: [D, …] → D values [1, …] (or squeezed to […]). */
  const perDir = (v: string, squeeze: boolean): string[] => {
    const parts = split(v, 0, Array.from({ length: D }, () => 1));
    return squeeze ? parts.map((p) => b.op('Squeeze', [p, ints([0])])) : parts;
  };
  const hInit = state(h0);
  const cInit = op === 'LSTM' ? state(c0) : undefined;
  const hs = hInit ? perDir(hInit, false) : [];
  const cs = cInit ? perDir(cInit, false) : [];
  const ws = perDir(W!, true);
  const rs = perDir(R!, true);
  const bs = bias ? perDir(bias, true) : [];
  const ps = op === 'LSTM' && peep ? perDir(peep, true) : [];

  // Zeros [1, B, H] for a held state that had no initial value (batch may be symbolic).
  let zerosMemo: string | undefined;
  const zeros = (): string => {
    if (zerosMemo) return zerosMemo;
    const batch = env.opset >= 15 ? b.op('Shape', [x], { start: 1, end: 2 }) : b.op('Slice', [b.op('Shape', [x]), ints([1]), ints([2]), ints([0])]);
    const shape = b.op('Concat', [ints([1]), batch, ints([H])], { axis: 0 });
    return (zerosMemo = b.op('ConstantOfShape', [shape], { value: float32Tensor([1], [0]) }));
  };
  // Step masks [B, 1]: t < L_b.
  const masks = new Map<number, string>();
  let lensCol: string | undefined;
  const mask = (t: number): string | undefined => {
    if (!lens) return undefined;
    lensCol ??= b.op('Unsqueeze', [b.op('Cast', [lens], { to: 7 }), ints([1])]);
    let m = masks.get(t);
    if (!m) masks.set(t, (m = b.op('Less', [b.init('t', int64Tensor([], [t])), lensCol])));
    return m;
  };

  const dirs: Direction[] = [];
  for (let d = 0; d < D; d++) {
    const reverse = direction === 'reverse' || d === 1;
    const [wb, rb] = bs.length ? split(bs[d]!, 0, [G * H, G * H]) : [undefined, undefined];
    // Input-side bias: Wb + Rb, except GRU with linear_before_reset, whose Rbh sits inside r ⊙ (…).
    const inBias = wb && rb && !lbr ? b.op('Add', [wb, rb]) : wb;
    const xw = add(b.op('MatMul', [x, b.op('Transpose', [ws[d]!])]), inBias);
    const dir: Direction = { reverse, acts: acts.slice(d * nActs, (d + 1) * nActs), xs: split(xw, 0, Array.from({ length: T }, () => 1)), rt: '', h: hs[d], c: cs[d] };
    if (op === 'GRU' && !lbr) {
      const [rzr, rh] = split(rs[d]!, 0, [2 * H, H]);
      dir.rt = b.op('Transpose', [rzr!]);
      dir.rht = b.op('Transpose', [rh!]);
    } else {
      dir.rt = b.op('Transpose', [rs[d]!]);
    }
    if (lbr) dir.rb = rb;
    if (ps.length) dir.p = split(ps[d]!, 0, [H, H, H]) as [string, string, string];
    dirs.push(dir);
  }

  const [yName, yhName, ycName] = node.outputs;
  const ys: string[][] = dirs.map(() => new Array<string>(T));
  for (const [d, dir] of dirs.entries()) {
    const [f, g2, h2] = dir.acts as [Activation, Activation, Activation];
    for (let s = 0; s < T; s++) {
      const t = dir.reverse ? T - 1 - s : s;
      const xt = dir.xs[t]!;
      const h = dir.h;
      let hNew: string;
      let cNew: string | undefined;
      if (op === 'RNN') {
        hNew = act(f, add(xt, h && b.op('MatMul', [h, dir.rt])));
      } else if (op === 'GRU') {
        const [xz, xr, xh] = split(xt, -1, [H, H, H]) as [string, string, string];
        let z: string, r: string, hh: string;
        if (!lbr) {
          const [hz, hr] = h ? split(b.op('MatMul', [h, dir.rt]), -1, [H, H]) : [undefined, undefined];
          z = act(f, add(xz, hz));
          r = act(f, add(xr, hr));
          hh = act(g2, add(xh, h && b.op('MatMul', [b.op('Mul', [r, h]), dir.rht!])));
        } else {
          const rec = h ? add(b.op('MatMul', [h, dir.rt]), dir.rb) : dir.rb;
          const [hz, hr, hhr] = rec ? split(rec, -1, [H, H, H]) : [undefined, undefined, undefined];
          z = act(f, add(xz, hz));
          r = act(f, add(xr, hr));
          hh = act(g2, add(xh, hhr && b.op('Mul', [r, hhr])));
        }
        hNew = h ? b.op('Add', [hh, b.op('Mul', [z, b.op('Sub', [h, hh])])]) : b.op('Mul', [b.op('Sub', [scalar(1), z]), hh]);
      } else {
        const c = dir.c;
        const [pi, po, pf, pc] = split(add(xt, h && b.op('MatMul', [h, dir.rt])), -1, [H, H, H, H]) as [string, string, string, string];
        const peephole = (v: string, k: number, cell: string | undefined) => (dir.p && cell ? b.op('Add', [v, b.op('Mul', [dir.p[k]!, cell])]) : v);
        const i = act(f, peephole(pi, 0, c));
        const fg = inputForget ? b.op('Sub', [scalar(1), i]) : act(f, peephole(pf, 2, c));
        const ig = b.op('Mul', [i, act(g2, pc)]);
        cNew = c ? b.op('Add', [b.op('Mul', [fg, c]), ig]) : ig;
        const o = act(f, peephole(po, 1, cNew));
        // h(C_t) is not clipped: clip bounds the gate inputs only.
        hNew = b.op('Mul', [o, emitActivation(b, h2, cNew, scalar)]);
      }
      const m = mask(t);
      if (m) {
        if (yName) ys[d]![t] = b.op('Where', [m, hNew, scalar(0)]);
        dir.h = b.op('Where', [m, hNew, h ?? zeros()]);
        if (cNew) dir.c = b.op('Where', [m, cNew, dir.c ?? zeros()]);
      } else {
        ys[d]![t] = hNew;
        dir.h = hNew;
        if (cNew) dir.c = cNew;
      }
    }
  }

  // Outputs, each finished by a node that writes the original name.
  const finish = (parts: string[], axis: number, perm: number[] | undefined, name: string) => {
    if (perm) b.op('Transpose', [parts.length === 1 ? parts[0]! : b.op('Concat', parts, { axis })], { perm }, { output: name });
    else if (parts.length === 1) b.op('Identity', [parts[0]!], {}, { output: name });
    else b.op('Concat', parts, { axis }, { output: name });
  };
  if (yName) {
    // Per direction [T, B, H] → [T, 1, B, H]; directions stacked on axis 1.
    const perDirY = ys.map((steps) => b.op('Unsqueeze', [b.op('Concat', steps, { axis: 0 }), ints([1])]));
    finish(perDirY, 1, layout === 1 ? [2, 0, 1, 3] : undefined, yName);
  }
  // onnxruntime reports a zero-length sequence's final state as 0, not as its initial state.
  const nonEmpty = mask(0); // 0 < L_b
  const final = (v: string, hadInit: boolean) => (nonEmpty && hadInit ? b.op('Where', [nonEmpty, v, scalar(0)]) : v);
  if (yhName) finish(dirs.map((dir) => final(dir.h!, !!hInit)), 0, layout === 1 ? [1, 0, 2] : undefined, yhName);
  if (ycName && op === 'LSTM') finish(dirs.map((dir) => final(dir.c!, !!cInit)), 0, layout === 1 ? [1, 0, 2] : undefined, ycName);
}
