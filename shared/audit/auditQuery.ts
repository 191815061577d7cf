// Listing a tenant's audit events: a page at a time in chain order, filtered server-side, from after the purge
// checkpoint to the tail, with a continuation token that only this tenant's log accepts.
import { odata } from '@azure/data-tables';

import {
  issueContinuation,
  listScope,
  type Page,
  type PageRequest,
  readContinuation,
  sequencePosition,
} from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import type { AuditChainEnds } from './auditChainEnds';
import type { AuditEvent, AuditFilter } from './auditEvent';
import { auditKeys, blockOf, EVENT_ROWS_END, type EventEntity, readEventOrThrow } from './auditRows';

/** A list call reads at most this many blocks, so a narrow filter over a long log answers in bounded time. */
const MAX_BLOCKS_PER_PAGE = 20;

export async function listAuditEvents(
  ends: AuditChainEnds,
  tenant: TenantScope,
  filter: AuditFilter,
  page: PageRequest,
): Promise<Page<AuditEvent>> {
  const { blockSize } = ends;
  // A position is only read in the log it was issued for: another tenant's token is refused.
  const scope = listScope(TABLES.audit, tenant.tenantId);
  const requested = readContinuation(page.continuation, scope, sequencePosition)?.after ?? 0;
  const top = Math.max(1, page.top);
  const table = await tenant.account.table(TABLES.audit);
  const [start, tail] = await Promise.all([
    ends.readCheckpoint(table, tenant.tenantId),
    ends.locateTail(table, tenant),
  ]);
  // Purged blocks hold nothing to list: start after the checkpoint.
  let after = Math.max(requested, start.sequence);
  const items: AuditEvent[] = [];
  if (after >= tail.sequence) return { items };

  const conditions = filterConditions(filter);
  const lastBlock = blockOf(tail.sequence, blockSize);
  let block = blockOf(after + 1, blockSize);
  for (let read = 0; read < MAX_BLOCKS_PER_PAGE && block <= lastBlock && items.length < top; read++) {
    const query = [
      odata`PartitionKey eq ${auditKeys.blockPartition(tenant.tenantId, block)}`,
      odata`RowKey gt ${auditKeys.eventRow(after)}`,
      odata`RowKey lt ${EVENT_ROWS_END}`,
      ...conditions,
    ].join(' and ');
    const pages = table
      .listEntities<EventEntity>({ queryOptions: { filter: query } })
      .byPage({ maxPageSize: Math.min(1000, top - items.length) });
    for await (const entities of pages) {
      for (const entity of entities) {
        if (items.length >= top) break;
        items.push(readEventOrThrow(entity));
        after = entity.sequence;
      }
      if (items.length >= top) break;
    }
    if (items.length < top) after = Math.max(after, (block + 1) * blockSize);
    block += 1;
  }
  after = Math.min(after, tail.sequence);
  return after < tail.sequence ? { items, continuation: issueContinuation(scope, { after }) } : { items };
}

/** Server-side filters: action, actor (id or UPN, case-insensitive) and the time range on the ISO string. */
function filterConditions(filter: AuditFilter): string[] {
  const conditions: string[] = [];
  if (filter.action !== undefined) conditions.push(odata`action eq ${filter.action}`);
  if (filter.actor !== undefined) {
    const actor = filter.actor.toLowerCase();
    conditions.push(odata`(actorId eq ${actor} or actorUpn eq ${actor})`);
  }
  const involving = (filter.involving ?? [])
    .map((value) => value.toLowerCase())
    .map((v) => odata`actorId eq ${v} or actorUpn eq ${v} or targetId eq ${v}`);
  const refs = (filter.subjectRefs ?? []).map((ref) => odata`subjectRef eq ${ref}`);
  if (involving.length + refs.length > 0) conditions.push(`(${[...involving, ...refs].join(' or ')})`);
  if (filter.from !== undefined) conditions.push(odata`time ge ${filter.from.toISOString()}`);
  if (filter.to !== undefined) conditions.push(odata`time le ${filter.to.toISOString()}`);
  return conditions;
}
