// Property tests run with a fixed seed, so CI is deterministic; FC_SEED picks another, FUZZ_RUNS runs more.
import fc from 'fast-check';

const seed = Number(process.env.FC_SEED ?? '20261125');
const runs = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : undefined;
fc.configureGlobal({ seed, ...(runs ? { numRuns: runs } : {}) });
