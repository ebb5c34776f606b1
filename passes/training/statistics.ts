/**
 * Fisher statistics from the forward pass (SNGD.md §2, §5): for each rebuilt layer, the batch
 * second moment of its homogeneous input, F_batch = (1/R)·x̃ᵀx̃ over the R rows of x̃.
 *
 *   dense (Gemm, MatMul):  rows of x̃ are the layer's input vectors (all leading axes flattened)
 *   Conv:                  rows are patch vectors (C_in/g·∏k), over batch, positions and groups
 *   ConvTranspose:         rows are the input patches each output position sees
 *
 *   Recurrent (per direction d):
 *     input stream      rows x_t over all time steps and batch rows (X reshaped to [T·B, I];
 *                       the row order does not matter, so layout 1 needs no transpose)
 *     recurrent stream  rows h_{t−1} for every step: the initial state (or zeros) and Y at the
 *                       steps that feed a next one — Y[0 … T−2] forward, Y[1 … T−1] reverse (the
 *                       reverse pass's h_{t−1} at time t is Y at t+1) — T·B rows in all
 *   With sequence_lens, rows past a sequence's end are included (Y is 0 there, as onnxruntime
 *   writes it): the statistic then also counts those padding rows.
 *
 * Patches come out of an ordinary Conv (ConvTranspose) whose kernel is the identity over the patch
 * elements, with the layer's own strides, pads and dilations (SNGD.md §5).
 *
 * Unit blocks (passes/reconstruct/units.ts): [m, d̃, d̃], block j = (1/R)·Σ_r w(z_rj)·x̃_r x̃_rᵀ, with
 * the rows of z (the layer's pre-activation, [R, m]) in the same order as the rows of x̃.
 */
import { attrInt } from '../../src/ir/attrs.js';
import type { Emitter } from '../../src/ir/emit.js';
import { elementCount, float32Tensor, int64Tensor } from '../../src/onnx/tensor.js';
import { deserializeNode, unitOf, type LayerRecord } from '../reconstruct/record.js';
import { unitWeights } from '../reconstruct/units.js';

export function emitStatistic(b: Emitter, rec: LayerRecord, rankOf: (value: string) => number | undefined, output: string): string {
  const rows = statisticRows(b, rec, rankOf);
  const withOne = rec.hasBias ? appendOnes(b, rows) : rows;
  const count = b.op('Cast', [b.op('Gather', [b.op('Shape', [withOne]), b.init('zero', int64Tensor([], [0]))], { axis: 0 })], { to: 1 });
  const moment = b.op('MatMul', [b.op('Transpose', [withOne], { perm: [1, 0] }), withOne]);
  return b.op('Div', [moment, count], {}, { output });
}

/**
 * A Nyström layer's statistic (SNGD.md §4): the landmark columns C = (1/R)·x̃ᵀ·x̃[:, I] ([d̃, k])
 * and the diagonal (1/R)·Σ_rows x̃² ([d̃]), I the layer's landmark-index input.
 */
export function emitNystromStatistic(b: Emitter, rec: LayerRecord, rankOf: (value: string) => number | undefined, columnsOut: string, diagonalOut: string): { columns: string; diagonal: string } {
  if (rec.fisher?.kind !== 'nystrom') throw new Error(`layer '${rec.name}' is not a Nyström layer`);
  const rows = statisticRows(b, rec, rankOf);
  const withOne = rec.hasBias ? appendOnes(b, rows) : rows;
  const count = b.op('Cast', [b.op('Gather', [b.op('Shape', [withOne]), b.init('zero', int64Tensor([], [0]))], { axis: 0 })], { to: 1 });
  const picked = b.op('Gather', [withOne, rec.fisher.index], { axis: 1 });
  const columns = b.op('Div', [b.op('MatMul', [b.op('Transpose', [withOne], { perm: [1, 0] }), picked]), count], {}, { output: columnsOut });
  const squares = b.op('ReduceSum', [b.op('Mul', [withOne, withOne]), b.init('axis0', int64Tensor([1], [0]))], { keepdims: 0 });
  const diagonal = b.op('Div', [squares, count], {}, { output: diagonalOut });
  return { columns, diagonal };
}

/**
 * A unit layer's statistic [m, d̃, d̃]: x̃ᵀ weighted per unit, (w_j ⊙ x̃)ᵀ·x̃ for all j as one
 * plain MatMul [m·d̃, R]·[R, d̃] (one large GEMM, not m small ones); m·R·d̃² multiply-adds.
 */
export function emitUnitStatistic(b: Emitter, rec: LayerRecord, rankOf: (value: string) => number | undefined, output: string): string {
  const unit = unitOf(rec);
  if (!unit) throw new Error(`layer '${rec.name}' has no unit blocks`);
  const rows = statisticRows(b, rec, rankOf);
  const withOne = rec.hasBias ? appendOnes(b, rows) : rows;
  const count = b.op('Cast', [b.op('Gather', [b.op('Shape', [withOne]), b.init('zero', int64Tensor([], [0]))], { axis: 0 })], { to: 1 });
  const z = b.op('Reshape', [unit.z, b.init('z_rows', int64Tensor([2], [-1, rec.m]))]);
  const w = unitWeights[unit.activation].emit(b, z); // [R, m]
  const perUnit = b.op('Unsqueeze', [b.op('Transpose', [w], { perm: [1, 0] }), b.init('axis1', int64Tensor([1], [1]))]); // [m, 1, R]
  const weighted = b.op('Mul', [perUnit, b.op('Transpose', [withOne], { perm: [1, 0] })]); // [m, d̃, R]
  const dt = rec.fisherDim;
  const flat = b.op('Reshape', [weighted, b.init('unit_rows', int64Tensor([2], [rec.m * dt, -1]))]);
  const moment = b.op('Reshape', [b.op('MatMul', [flat, withOne]), b.init('unit_blocks', int64Tensor([3], [rec.m, dt, dt]))]);
  return b.op('Div', [moment, count], {}, { output });
}

function statisticRows(b: Emitter, rec: LayerRecord, rankOf: (value: string) => number | undefined): string {
  const original = deserializeNode(rec.original[0]!.node);
  const attrs = original.attribute ?? [];
  const flat = (v: string) => b.op('Reshape', [v, b.init('rows_shape', int64Tensor([2], [-1, rec.d]))]);
  const layout = rec.layout;
  switch (rec.kind) {
    case 'Recurrent':
      return recurrentRows(b, rec);
    case 'Gemm': {
      const node = { name: '', opType: 'Gemm', domain: '', inputs: [], outputs: [], attrs };
      if (layout.weightOperand === 'B') {
        return attrInt(node, 'transA', 0) ? b.op('Transpose', [rec.x], { perm: [1, 0] }) : rec.x;
      }
      // Weight on the left: the columns of B' are the input vectors.
      return attrInt(node, 'transB', 0) ? rec.x : b.op('Transpose', [rec.x], { perm: [1, 0] });
    }
    case 'MatMul': {
      if (layout.weightOperand === 'B') return flat(rec.x);
      const rank = rankOf(rec.x);
      if (rank === undefined) throw new Error(`layer '${rec.name}': the rank of '${rec.x}' is unknown`);
      const perm = [...Array(rank).keys()];
      [perm[rank - 1], perm[rank - 2]] = [perm[rank - 2]!, perm[rank - 1]!];
      return flat(b.op('Transpose', [rec.x], { perm }));
    }
    case 'Conv':
    case 'ConvTranspose': {
      const group = layout.group ?? 1;
      const [c0, c1, ...kernel] = layout.weightDims as [number, number, ...number[]];
      const k = elementCount(kernel);
      const cig = rec.kind === 'Conv' ? c1 : c0 / group;
      const eye = new Float32Array(group * rec.d * cig * k);
      // Conv kernel [g·d, C_in/g, k…]; ConvTranspose kernel [C_in, d, k…] (d = C_in/g·∏k per group).
      for (let gi = 0; gi < group; gi++) {
        for (let ci = 0; ci < cig; ci++) {
          for (let kk = 0; kk < k; kk++) {
            const j = ci * k + kk;
            const at = rec.kind === 'Conv' ? ((gi * rec.d + j) * cig + ci) * k + kk : ((gi * cig + ci) * rec.d + j) * k + kk;
            eye[at] = 1;
          }
        }
      }
      const dims = rec.kind === 'Conv' ? [group * rec.d, cig, ...kernel] : [c0, rec.d, ...kernel];
      const kernelInit = b.init('patch_kernel', float32Tensor(dims, eye));
      const patches = b.op(rec.kind, [rec.x, kernelInit], {}, { name: `${b.prefix}/patches` });
      const keep = new Set(['strides', 'pads', 'dilations', 'auto_pad', 'kernel_shape', 'group', 'output_padding', 'output_shape']);
      const patchNode = b.nodes[b.nodes.length - 1]!;
      patchNode.attrs = attrs.filter((a) => keep.has(a.name ?? '')).map((a) => ({ ...a }));
      // [N, g·d, positions…] → [N, g, d, P] → [N, g, P, d] → rows [N·g·P, d]
      const grouped = b.op('Reshape', [patches, b.init('grouped', int64Tensor([4], [0, group, rec.d, -1]))]);
      return flat(b.op('Transpose', [grouped], { perm: [0, 1, 3, 2] }));
    }
  }
}

function recurrentRows(b: Emitter, rec: LayerRecord): string {
  const info = rec.recurrent!;
  const ints = (base: string, v: number[]) => b.init(base, int64Tensor([v.length], v));
  const rows = (v: string, width: number) => b.op('Reshape', [v, ints('rows_shape', [-1, width])]);
  if (info.stream === 'W') return rows(info.x, info.input);
  const H = info.hidden;
  const d = info.direction;
  // Y: [T, D, B, H] (layout 0) or [B, T, D, H] (layout 1); initial_h: [D, B, H] or [B, D, H].
  const [tAxis, dAxis, hAxis] = info.layoutAttr === 0 ? [0, 1, 0] : [1, 2, 1];
  const [start, end] = info.reverse ? [1, Number.MAX_SAFE_INTEGER] : [0, -1];
  const previous = b.op('Slice', [info.y, ints('starts', [start, d]), ints('ends', [end, d + 1]), ints('axes', [tAxis, dAxis])]);
  let initial: string;
  if (info.initialH) {
    initial = b.op('Slice', [info.initialH, ints('h0_starts', [d]), ints('h0_ends', [d + 1]), ints('h0_axes', [hAxis])]);
  } else {
    const batch = b.op('Slice', [b.op('Shape', [info.x]), ints('batch_start', [info.layoutAttr === 0 ? 1 : 0]), ints('batch_end', [info.layoutAttr === 0 ? 2 : 1]), ints('batch_axis', [0])]);
    const shape = b.op('Concat', [batch, ints('hidden', [H])], { axis: 0 });
    initial = b.op('ConstantOfShape', [shape], { value: float32Tensor([1], [0]) });
  }
  return b.op('Concat', [rows(initial, H), rows(previous, H)], { axis: 0 });
}

function appendOnes(b: Emitter, rows: string): string {
  const n = b.op('Slice', [b.op('Shape', [rows]), b.init('s0', int64Tensor([1], [0])), b.init('s1', int64Tensor([1], [1]))]);
  const shape = b.op('Concat', [n, b.init('one', int64Tensor([1], [1]))], { axis: 0 });
  const ones = b.op('ConstantOfShape', [shape], { value: float32Tensor([1], [1]) });
  return b.op('Concat', [rows, ones], { axis: 1 });
}
