/**
 * ai.onnx ops whose versions from 1 up to MAX_TARGET (21) changed nothing an existing node
 * relies on: new types, new optional attributes or inputs whose defaults are the old behaviour,
 * negative axes/indices allowed. They keep their attributes and inputs as they are.
 *
 * Known edge left alone: OneHot before 11 read negative indices as "all off"; from 11 they count
 * from the end (exports do not produce negative one-hot indices).
 */
export const UNCHANGED: ReadonlySet<string> = new Set([
  // math
  'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh', 'Cos', 'Cosh', 'Sin', 'Sinh', 'Tan', 'Erf', 'Sign', 'Round', 'Mod',
  'Not', 'IsNaN', 'IsInf', 'BitShift', 'BitwiseAnd', 'BitwiseNot', 'BitwiseOr', 'BitwiseXor', 'GreaterOrEqual', 'LessOrEqual',
  'Where', 'Det', 'Einsum', 'MatMul', 'MatMulInteger', 'CumSum', 'Softplus', 'Softsign', 'Celu', 'HardSwish', 'Mish', 'Gelu',
  'Shrink', 'Trilu',
  // tensors and shapes
  'Identity', 'Constant', 'ConstantOfShape', 'EyeLike', 'Shape', 'Size', 'Flatten', 'Transpose', 'Expand', 'Gather',
  'GatherElements', 'GatherND', 'ScatterElements', 'ScatterND', 'Compress', 'NonZero', 'OneHot', 'Range', 'ReverseSequence',
  'Unique', 'DepthToSpace', 'SpaceToDepth', 'ArgMax', 'ArgMin', 'CastLike', 'CenterCropPad', 'Col2Im',
  // layers
  'Conv', 'ConvTranspose', 'ConvInteger', 'DeformConv', 'GlobalAveragePool', 'GlobalMaxPool', 'MaxRoiPool', 'MaxUnpool',
  'LRN', 'LpNormalization', 'LayerNormalization', 'NonMaxSuppression', 'AffineGrid',
  'NegativeLogLikelihoodLoss', 'SoftmaxCrossEntropyLoss',
  // quantization
  'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul',
  // random
  'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Multinomial', 'Bernoulli',
  // sequences and optionals
  'SequenceAt', 'SequenceConstruct', 'SequenceEmpty', 'SequenceErase', 'SequenceInsert', 'SequenceLength', 'SequenceMap',
  'SplitToSequence', 'ConcatFromSequence', 'Optional', 'OptionalGetElement', 'OptionalHasElement',
  // signal, text, images
  'STFT', 'BlackmanWindow', 'HammingWindow', 'HannWindow', 'MelWeightMatrix', 'StringNormalizer', 'TfIdfVectorizer',
  'RegexFullMatch', 'StringConcat', 'StringSplit', 'ImageDecoder',
]);
