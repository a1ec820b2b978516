/**
 * Between tests, give the worker's event loop one full turn. Tests that run child processes with
 * spawnSync block it for seconds; vitest's worker answers its runner's RPC (60 s timeout) only when
 * the loop turns, and back-to-back synchronous tests otherwise add up past that timeout.
 */
import { afterEach } from 'vitest';

afterEach(async () => {
  await new Promise((resolve) => setTimeout(resolve, 0));
});
