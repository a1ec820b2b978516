/**
 * The backend room's one door: what other rooms may use of it. Picking and starting a tfjs backend
 * and what a run records of it (select.ts); the kernel names the trainer and instruments call
 * (ops.ts); for the model, PyTorch's conv with the speed path the backend picks for each shape
 * (conv.ts) and training BatchNorm on the fused kernels (batchnorm.ts); and the few questions asked
 * of the compiled kernels (which build runs, on how many threads, whether the fused BatchNorm is
 * there). Everything else in src/backend is the backend's own business; tests and benchmarks may
 * reach inside.
 */
export { BACKEND_CHOICES, TFJS_VERSION, backendRecord, selectBackend, type BackendChoice, type BackendInfo } from './select.js';
export { ACT_STATS, SGD_STEP } from './ops.js';
export { conv2dTorch } from './conv.js';
export { batchNormTrainFused, hasFusedRunningStats, runningStatsFused } from './batchnorm.js';
export { convFlavor, convThreads } from './compiled.js';
export { hasFastBatchNorm } from './added-kernels.js';
export { wantedThreads } from './pool.js';
export { registerWasmTrainingKernels } from './register.js';
