// A residency move as a job (SPEC §8): its states, what it has done, and the verification manifest. Pure.
import { z } from 'zod';

import { NEWEST_FIRST_KEY, newestFirstKey } from '../ids';
import { GEOGRAPHIES, type Geography } from '../vocabulary/geographies';

export const MIGRATION_STATUSES = [
  'validating',
  'copying',
  'verifying',
  'switching',
  'cleaning',
  'completed',
  'failed',
] as const;
export type MigrationStatus = (typeof MIGRATION_STATUSES)[number];

/** Before the switch a failure rolls back; from the switch on the move only goes forward. */
export const BEFORE_SWITCH: readonly MigrationStatus[] = ['validating', 'copying', 'verifying'];
export const isTerminal = (status: MigrationStatus): boolean => status === 'completed' || status === 'failed';

/** Rows or blobs, and one digest over them, on one side of the move. */
export interface Side {
  count: number;
  digest: string;
}

/** The verification manifest (SPEC §8): per table and container, both sides, and the source's emptiness. */
export interface MigrationManifest {
  from: Geography;
  to: Geography;
  tables: Record<string, { source: Side; target: Side; matched: boolean }>;
  containers: Record<
    string,
    { source: Side & { bytes: number }; target: Side & { bytes: number }; matched: boolean }
  >;
  /** Partitions found different and copied again before they matched. */
  resynced: number;
  /** What the source account still held of the tenant after the cleaning (all zero when it is empty). */
  sourceRemaining?: Record<string, number>;
}

/** Where the work stands: which table or container, and the listing's continuation token. */
export interface MigrationCursor {
  /** Index into the tables then containers being worked through. */
  item: number;
  continuationToken?: string | undefined;
}

export interface MigrationJob {
  tenantId: string;
  migrationId: string;
  from: Geography;
  to: Geography;
  status: MigrationStatus;
  requestedBy: string;
  createdAt: string;
  updatedAt: string;
  /** When the write fence flag was set. */
  fencedAt: string;
  /**
   * When the copy may start: every instance has seen the flag by then (twice the fence's staleness bound of
   * the instance that started the move, kept here so that every worker waits the same).
   */
  copyAfter: string;
  switchedAt?: string | undefined;
  completedAt?: string | undefined;
  /** Rows and blobs copied so far, per table and container (then deleted, during the cleaning). */
  progress: {
    copied: Record<string, number>;
    deleted: Record<string, number>;
    verified: Record<string, number>;
  };
  cursor: MigrationCursor;
  manifest?: MigrationManifest | undefined;
  failure?: { code: string; reason: string } | undefined;
  /** The rollback after a failure is done. */
  rolledBack?: boolean | undefined;
}

/** A queue message of `residency-work`: ids only. */
export const residencyWorkMessageSchema = z.strictObject({
  tenantId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/),
  migrationId: z.string().regex(NEWEST_FIRST_KEY),
});
export type ResidencyWorkMessage = z.infer<typeof residencyWorkMessageSchema>;

export const geographySchema = z.enum(GEOGRAPHIES);

/** Migration ids sort newest first, so the latest is the first row of the tenant's partition. */
export const newMigrationId = (now: Date, random?: string): string => newestFirstKey(now, random);

/** What a dry run answers (SPEC §8): the plan, with an estimate of the time. */
export interface MigrationPlan {
  from: Geography;
  to: Geography;
  tables: Record<string, { rows: number; bytes: number }>;
  containers: Record<string, { blobs: number; bytes: number }>;
  estimatedSeconds: number;
}

/**
 * Rates for the estimate, measured with `npm run bench` (residency scenario) on Azurite: the whole move (copy,
 * verification of both sides, cleaning) ran at 2,234 rows/s for a tenant of 48k rows and 640 rows/s for one
 * of 381k rows (100k records), Azurite slowing as its tables grow. The estimate takes the slower figure;
 * Azure Table storage is faster, so it errs long.
 */
export const ESTIMATE_ROWS_PER_SECOND = 640;
export const ESTIMATE_BYTES_PER_SECOND = 20 * 1024 * 1024;

export function estimateSeconds(rows: number, blobBytes: number, fenceWaitSeconds: number): number {
  return Math.ceil(
    fenceWaitSeconds + rows / ESTIMATE_ROWS_PER_SECOND + blobBytes / ESTIMATE_BYTES_PER_SECOND,
  );
}
