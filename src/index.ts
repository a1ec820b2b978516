/**
 * spikeprobe's library API, for people who keep their own TensorFlow.js training loop.
 *
 *   import * as tf from '@tensorflow/tfjs';
 *   import { CenterLossModule, createModel, forward, TorchSGD } from 'spikeprobe';
 */
export { centerLoss, centerGradient, initCenters, CenterLossModule, type CenterLossOptions } from './model/centerloss.js';
export { createModel, forward, updateBnRunningStats, disposeModel, countParams, type Model, type ForwardResult } from './model/resnet.js';
export { TorchSGD, type SgdParam } from './train/sgd.js';
export { modelLr, centerLr, lrFactor } from './train/schedule.js';
export { train, crossEntropy, loadDataFor, type TrainOptions, type TrainResult, type EpochSummary } from './train/trainer.js';
export { selectBackend, type BackendInfo } from './backend/index.js';
export { registerWasmTrainingKernels } from './backend/index.js';
export { loadConfig, resolveConfig } from './config/load.js';
export { ConfigSchema, type Config } from './config/schema.js';
export { PRESETS } from './config/presets.js';
export { loadData } from './data/index.js';
export { makeInstruments, INSTRUMENTS, DEFAULT_INSTRUMENTS } from './instruments/index.js';
export type { Instrument, BatchView } from './instruments/types.js';
export { loadSuite } from './suite/load.js';
export { loadRuns } from './suite/run.js';
export { analyzeRuns } from './suite/analyze.js';
export { analyzeDecay, analyzeSuite } from './analysis/index.js';
export { buildReport, writeReport } from './report/index.js';
export { ingestFiles, ingestPaths, readEventFiles, type IngestOptions, type IngestResult } from './ingest/index.js';
export { InputError } from './util/errors.js';
