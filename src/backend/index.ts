/**
 * The backend room's one door: what other rooms may use of it. Picking and starting a tfjs backend
 * (select.ts), the kernel names the model, trainer and instruments call (ops.ts), PyTorch's conv
 * with the speed path the backend picks for each shape (conv.ts), and the few
 * questions they ask of the compiled kernels (which build runs, on how many threads, whether the
 * fused BatchNorm is there). Everything else in src/backend is the backend's own business; tests and
 * benchmarks may reach inside.
 */
export { BACKEND_CHOICES, TFJS_VERSION, backendRecord, selectBackend, type BackendChoice, type BackendInfo } from './select.js';
export { ACT_STATS, BN_APPLY, BN_GRAD, BN_RUNNING, BN_STATS, RELU_GRAD, SGD_STEP } from './ops.js';
export { conv2dTorch } from './conv.js';
export { convFlavor, convThreads } from './compiled.js';
export { hasFastBatchNorm } from './added-kernels.js';
export { wantedThreads } from './pool.js';
export { registerWasmTrainingKernels } from './register.js';
