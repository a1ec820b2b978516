/**
 * Names of the kernels spikeprobe registers with tfjs (no dependencies: the model, trainer and
 * instruments call them through tf.engine().runKernel by these names, the backend registers them).
 */
/** BatchNorm in training mode: batch statistics, normalise-scale-shift (optionally + residual and ReLU), gradient. */
export const BN_STATS = 'SpikeprobeBatchNormStats';
export const BN_APPLY = 'SpikeprobeBatchNormApply';
export const BN_GRAD = 'SpikeprobeBatchNormGrad';
/** Per-channel max and the count of values <= 0 of an activation, one pass (dead-units instrument). */
export const ACT_STATS = 'SpikeprobeActStats';
/** ReLU's gradient dy * step(x) in one pass (the Relu gradient uses it where registered). */
export const RELU_GRAD = 'SpikeprobeReluGrad';
/** PyTorch's running-average update of one BatchNorm layer's statistics, in one kernel. */
export const BN_RUNNING = 'SpikeprobeBatchNormRunning';
/** One torch.optim.SGD step of one parameter, fused (registered for 'wasm' where the compiled module runs). */
export const SGD_STEP = 'SpikeprobeSgdStep';
