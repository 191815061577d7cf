// Sizes of the run: BENCH_SCALE=full (default) or small, each figure overridable by its own variable.
import { MAX_BATCH_ITEMS } from '../shared/records/personalDataEvent';

export interface Scale {
  name: string;
  discovery: {
    /** Records of the small and the large tenant, the subject's included. */
    smallTenantRecords: number;
    largeTenantRecords: number;
    subjectRecords: number;
    recordsPerOtherSubject: number;
    repetitions: number;
  };
  export: { subjectRecords: number; repetitions: number };
  /**
   * Single events: `events` records over `subjects`, one `record.upserted` message each. Batches:
   * `batchSubjects` subjects, `batchItems` records each, sent as one `records.upserted` message per subject
   * (a device's check-in). `concurrency` messages in flight on both paths, and raw upserts in flight.
   */
  ingestion: {
    events: number;
    subjects: number;
    batchSubjects: number;
    batchItems: number;
    concurrency: number;
  };
  /** Expired (`usage`) and live (`directory`) records of the purge tenant, and records per subject. */
  purge: { expired: number; live: number; recordsPerSubject: number };
  /**
   * The residency move: records of the tenant moved (with their lookups and expiry entries), records per
   * subject, DSR requests, audit events and export packages (~100 KB each); moves of each side (product,
   * raw), alternating which goes first.
   */
  residency: {
    records: number;
    recordsPerSubject: number;
    requests: number;
    auditEvents: number;
    packages: number;
    repetitions: number;
  };
  /** Bytes of JSON in each record's `data`. */
  recordBytes: number;
  /** Concurrent transactions while seeding. */
  seedConcurrency: number;
  /** Which scenarios run (BENCH_SCENARIOS=discovery,export,ingestion,purge,residency; default all). */
  scenarios: ScenarioName[];
}

export const SCENARIOS = ['discovery', 'export', 'ingestion', 'purge', 'residency'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

const PRESETS: Record<string, Scale> = {
  full: {
    name: 'full',
    discovery: {
      smallTenantRecords: 10_000,
      largeTenantRecords: 100_000,
      subjectRecords: 100,
      recordsPerOtherSubject: 10,
      repetitions: 5,
    },
    export: { subjectRecords: 10_000, repetitions: 3 },
    ingestion: { events: 3_000, subjects: 300, batchSubjects: 300, batchItems: 10, concurrency: 16 },
    purge: { expired: 5_000, live: 20_000, recordsPerSubject: 10 },
    residency: {
      records: 5_000,
      recordsPerSubject: 10,
      requests: 1_000,
      auditEvents: 5_000,
      packages: 20,
      repetitions: 2,
    },
    recordBytes: 1_000,
    seedConcurrency: 8,
    scenarios: [...SCENARIOS],
  },
  small: {
    name: 'small',
    discovery: {
      smallTenantRecords: 1_000,
      largeTenantRecords: 10_000,
      subjectRecords: 100,
      recordsPerOtherSubject: 10,
      repetitions: 3,
    },
    export: { subjectRecords: 1_000, repetitions: 2 },
    ingestion: { events: 300, subjects: 30, batchSubjects: 30, batchItems: 10, concurrency: 16 },
    purge: { expired: 500, live: 2_000, recordsPerSubject: 10 },
    residency: {
      records: 1_000,
      recordsPerSubject: 10,
      requests: 100,
      auditEvents: 500,
      packages: 5,
      repetitions: 1,
    },
    recordBytes: 1_000,
    seedConcurrency: 8,
    scenarios: [...SCENARIOS],
  },
};

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}.`);
  return value;
}

export function scaleFrom(env: NodeJS.ProcessEnv = process.env): Scale {
  const name = env.BENCH_SCALE?.trim() || 'full';
  const preset = PRESETS[name];
  if (!preset) throw new Error(`BENCH_SCALE must be one of ${Object.keys(PRESETS).join(', ')}.`);
  const d = preset.discovery;
  const scale: Scale = {
    name,
    discovery: {
      smallTenantRecords: integer(env, 'BENCH_DISCOVERY_SMALL', d.smallTenantRecords),
      largeTenantRecords: integer(env, 'BENCH_DISCOVERY_LARGE', d.largeTenantRecords),
      subjectRecords: integer(env, 'BENCH_DISCOVERY_SUBJECT_RECORDS', d.subjectRecords),
      recordsPerOtherSubject: integer(env, 'BENCH_RECORDS_PER_SUBJECT', d.recordsPerOtherSubject),
      repetitions: integer(env, 'BENCH_DISCOVERY_REPETITIONS', d.repetitions),
    },
    export: {
      subjectRecords: integer(env, 'BENCH_EXPORT_RECORDS', preset.export.subjectRecords),
      repetitions: integer(env, 'BENCH_EXPORT_REPETITIONS', preset.export.repetitions),
    },
    ingestion: {
      events: integer(env, 'BENCH_INGEST_EVENTS', preset.ingestion.events),
      subjects: integer(env, 'BENCH_INGEST_SUBJECTS', preset.ingestion.subjects),
      batchSubjects: integer(env, 'BENCH_INGEST_BATCH_SUBJECTS', preset.ingestion.batchSubjects),
      batchItems: integer(env, 'BENCH_INGEST_BATCH_ITEMS', preset.ingestion.batchItems),
      concurrency: integer(env, 'BENCH_INGEST_CONCURRENCY', preset.ingestion.concurrency),
    },
    purge: {
      expired: integer(env, 'BENCH_PURGE_EXPIRED', preset.purge.expired),
      live: integer(env, 'BENCH_PURGE_LIVE', preset.purge.live),
      recordsPerSubject: integer(env, 'BENCH_PURGE_RECORDS_PER_SUBJECT', preset.purge.recordsPerSubject),
    },
    residency: {
      records: integer(env, 'BENCH_RESIDENCY_RECORDS', preset.residency.records),
      recordsPerSubject: integer(
        env,
        'BENCH_RESIDENCY_RECORDS_PER_SUBJECT',
        preset.residency.recordsPerSubject,
      ),
      requests: integer(env, 'BENCH_RESIDENCY_REQUESTS', preset.residency.requests, 0),
      auditEvents: integer(env, 'BENCH_RESIDENCY_AUDIT_EVENTS', preset.residency.auditEvents, 0),
      packages: integer(env, 'BENCH_RESIDENCY_PACKAGES', preset.residency.packages, 0),
      repetitions: integer(env, 'BENCH_RESIDENCY_REPETITIONS', preset.residency.repetitions),
    },
    recordBytes: integer(env, 'BENCH_RECORD_BYTES', preset.recordBytes, 100),
    seedConcurrency: integer(env, 'BENCH_SEED_CONCURRENCY', preset.seedConcurrency),
    scenarios: scenarioList(env.BENCH_SCENARIOS),
  };
  if (scale.discovery.subjectRecords > scale.discovery.smallTenantRecords) {
    throw new Error('The small tenant must hold at least the discovery subject records.');
  }
  if (scale.discovery.smallTenantRecords > scale.discovery.largeTenantRecords) {
    throw new Error('BENCH_DISCOVERY_SMALL must not exceed BENCH_DISCOVERY_LARGE.');
  }
  if (scale.ingestion.batchItems > MAX_BATCH_ITEMS) {
    throw new Error(`BENCH_INGEST_BATCH_ITEMS must not exceed ${MAX_BATCH_ITEMS} (a batch's limit).`);
  }
  return scale;
}

function scenarioList(text: string | undefined): ScenarioName[] {
  if (!text?.trim()) return [...SCENARIOS];
  const names = text.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new Error(`BENCH_SCENARIOS: "${name}" is not one of ${SCENARIOS.join(', ')}.`);
    }
  }
  return SCENARIOS.filter((name) => names.includes(name));
}
