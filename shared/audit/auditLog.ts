// The audit log in Table storage: an append-only, hash-chained run of events per tenant (SPEC §7).
//
// Layout (table `audit` of the tenant's geography account):
// - Events sit in blocks of `blockSize` (default 1000) sequences, so no partition grows without bound:
//   PartitionKey `${tenantId}_${block}` (block = floor((sequence - 1) / blockSize), 6 digits), RowKey the
//   sequence (12 digits), so rows read back in chain order.
// - Each block holds its chain head (RowKey `~head`: sequence, hash, lastEventId) and one marker per event id
//   (RowKey `~id_<eventId>`). An append writes event, marker and head in ONE entity-group transaction,
//   guarded by the head's ETag (or by creating the head of a new block), so two writers can never both
//   extend the same position: the chain does not fork. A loser re-reads the head and retries.
// - Exactly-once by id holds within a one-block window: an append looks for the id's marker in the block of
//   the last event and the block before it, which covers at least the last `blockSize` events.
// - The 1-year purge (`purgeBefore`) leaves a checkpoint (PartitionKey `${tenantId}_checkpoint`, RowKey
//   `~checkpoint`: sequence, hash, lastEventId of the last purged event); the chain then starts there, and
//   rows at or before it are never read again (verify and list start after it). The purge works block by
//   block from the checkpoint on, and for each run of expired events it first moves the checkpoint (ETag
//   guarded, only forward) and then deletes the events and their `~id_` markers (100 rows per transaction).
//   The checkpoint also records how far rows are deleted (`deletedThrough`) and below which block every
//   `~head` is deleted (`headsFrom`), so a purge stopped part-way is finished by the next one. A block's
//   `~head` goes once all of the block is purged and a later block exists; the tail's head always stays.
// - A purge deletes the heads of blocks behind the checkpoint only after moving the checkpoint past them. So
//   a search for the tail that relies on a head being absent re-reads the checkpoint afterwards: when the
//   checkpoint is not past what it found, no head it missed was purged (otherwise it searches again).
// `~` sorts after digits, so `RowKey lt '~'` selects the events of a block.
//
// The rows are in auditRows.ts; each operation has its module (auditAppend, auditQuery, auditVerification,
// auditPurge), and auditChainEnds finds where a chain starts and ends for all of them.
import type { Clock } from '../clock';
import type { Page, PageRequest } from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { AuditAppender } from './auditAppend';
import { AuditChainEnds } from './auditChainEnds';
import type {
  AuditEvent,
  AuditEventInput,
  AuditFilter,
  AuditLog,
  AuditPurgeResult,
  AuditVerification,
} from './auditEvent';
import { AuditPurge } from './auditPurge';
import { listAuditEvents } from './auditQuery';
import { DEFAULT_BLOCK_SIZE } from './auditRows';
import { verifyAuditChain } from './auditVerification';

export interface AuditLogOptions {
  /** Sequences per partition; tests use a small one to cross block boundaries quickly. */
  blockSize?: number;
}

/** The log's operations over one table layout (auditRows.ts), each in its own module. */
export class TableAuditLog implements AuditLog {
  private readonly ends: AuditChainEnds;
  private readonly appender: AuditAppender;
  private readonly purge: AuditPurge;

  constructor(clock: Clock, options: AuditLogOptions = {}) {
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isSafeInteger(blockSize) || blockSize < 1) {
      throw new Error('The audit block size must be a positive integer.');
    }
    this.ends = new AuditChainEnds(blockSize);
    this.appender = new AuditAppender(clock, this.ends);
    this.purge = new AuditPurge(this.ends);
  }

  append(tenant: TenantScope, input: AuditEventInput): Promise<AuditEvent> {
    return this.appender.append(tenant, input);
  }

  list(tenant: TenantScope, filter: AuditFilter, page: PageRequest): Promise<Page<AuditEvent>> {
    return listAuditEvents(this.ends, tenant, filter, page);
  }

  verify(tenant: TenantScope): Promise<AuditVerification> {
    return verifyAuditChain(this.ends, tenant);
  }

  purgeBefore(tenant: TenantScope, cutoff: Date): Promise<AuditPurgeResult> {
    return this.purge.purgeBefore(tenant, cutoff);
  }
}
