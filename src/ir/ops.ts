/**
 * Ops as data (STYLE.md §1): named sets that passes test membership against, rather than lists
 * of special cases scattered through rules.
 */

/** Ops whose outputs never carry a gradient: shape/index/comparison/integer computations. */
export const NON_DIFFERENTIABLE = new Set<string>([
  'Shape', 'Size', 'NonZero', 'ConstantOfShape', 'Range', 'Constant',
  'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf',
  'ArgMax', 'ArgMin', 'Floor', 'Ceil', 'Round', 'Sign', 'RandomNormal', 'RandomUniform', 'RandomNormalLike',
  'RandomUniformLike', 'Multinomial', 'Bernoulli', 'EyeLike', 'OneHot', 'TopK_indices',
]);

/**
 * Elementwise ops with numpy broadcasting: a rule returns each input's gradient in the output's
 * (broadcast) shape and the autodiff driver sums it back to the input's shape.
 */
export const BROADCASTING = new Set<string>(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'Min', 'Max', 'Sum', 'Mean', 'PRelu', 'Expand']);

/** Float element types (TensorProto.DataType): only these carry gradients. */
export const FLOAT_TYPES = new Set<number>([1, 10, 11, 16]);
