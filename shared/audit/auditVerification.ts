// Verifying a tenant's stored audit chain: every hash and link from the purge checkpoint to the tail, telling
// a broken chain from an append or a purge that ran beside the verification.
import { odata } from '@azure/data-tables';

import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import { type ChainHead, type ChainPosition, ChainVerifier } from './auditChain';
import type { AuditChainEnds } from './auditChainEnds';
import type { AuditVerification } from './auditEvent';
import { auditKeys, blockOf, EVENT_ROWS_END, type EventEntity, MAX_BLOCK, readEvent } from './auditRows';

export async function verifyAuditChain(
  ends: AuditChainEnds,
  tenant: TenantScope,
): Promise<AuditVerification> {
  const table = await tenant.account.table(TABLES.audit);
  let start: ChainHead = await ends.readCheckpoint(table, tenant.tenantId);
  let tail = await ends.locateTail(table, tenant, start);
  let verifier = new ChainVerifier(start, tail);
  /** The last link the current verifier accepted, how many it accepted, and how many verifiers before it. */
  let reached: ChainPosition = start;
  let accepted = 0;
  let carried = 0;
  // One query over every block from the start on (not a walk from head to head), so that events in a block
  // whose head is gone are still read, and show up as unacknowledged. Rows at or before the checkpoint (a
  // purge that stopped part-way leaves some) are outside the query.
  const query = [
    odata`PartitionKey ge ${auditKeys.blockPartition(tenant.tenantId, blockOf(start.sequence + 1, ends.blockSize))}`,
    odata`PartitionKey le ${auditKeys.blockPartition(tenant.tenantId, MAX_BLOCK)}`,
    odata`RowKey gt ${auditKeys.eventRow(start.sequence)}`,
    odata`RowKey lt ${EVENT_ROWS_END}`,
  ].join(' and ');
  read: for await (const entities of table
    .listEntities<EventEntity>({ queryOptions: { filter: query } })
    .byPage({ maxPageSize: 1000 })) {
    for (const entity of entities as Partial<EventEntity>[]) {
      // The RowKey is the position; a row at or before a checkpoint that moved while reading is purged.
      const position = Number(entity.rowKey);
      if (position <= start.sequence) continue;
      const event = readEvent(entity);
      const feed = (): boolean => {
        if (!event) return verifier.addUnreadable(String(entity.id ?? entity.rowKey));
        if (!verifier.add(event)) return false;
        reached = event;
        accepted += 1;
        return true;
      };
      if (feed()) continue;
      // Two things running beside a verification look like a broken chain without being one; anything else is.
      const checkpoint = await ends.readCheckpoint(table, tenant.tenantId);
      if (checkpoint.sequence > start.sequence) {
        // A purge moved the checkpoint and deleted events from the old start on: the chain starts there now,
        // and goes on with the rows still to come.
        start = checkpoint;
        reached = checkpoint;
        accepted = 0;
        carried = 0;
        if (start.sequence > tail.sequence) tail = await ends.locateTail(table, tenant, start);
        if (position <= start.sequence) {
          verifier = new ChainVerifier(reached, tail);
          continue;
        }
      } else if (position > tail.sequence) {
        // An append after the tail was located: past the head read then, but acknowledged by a later one.
        const later = await ends.locateTail(table, tenant, start);
        if (later.sequence <= tail.sequence) break read;
        tail = later;
        carried += accepted;
        accepted = 0;
      } else {
        break read;
      }
      verifier = new ChainVerifier(reached, tail);
      if (!feed()) break read;
    }
  }
  const result = verifier.finish();
  return { ...result, checked: result.checked + carried };
}
