// Property on Azurite (SPEC §4): events may arrive late, twice and out of order. Whatever order a set of
// upserts (moving records between two people) and deletions arrives in, the stored state is the one the
// rules give — the newest occurrence wins wherever the record lives, the earliest deletion that covers it
// applies — and the expiry index holds exactly the entries of the stored versions.
import { randomUUID } from 'node:crypto';

import type { TableClient } from '@azure/data-tables';
import fc from 'fast-check';

import { recordsPartition } from '../../../shared/records/recordKeys';
import { createRecordServices } from '../../../shared/records/recordServices';
import type { ExpiryEntry } from '../../../shared/retention/expiryIndex';
import { dueAt, dueDay, RETENTION_POLICY } from '../../../shared/retention/retentionPolicy';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { TABLES } from '../../../shared/storage/names';
import { testStorage, testTenantScope } from '../../support/testStorage';

const storage = testStorage();
const services = createRecordServices({ transferPackages: async () => undefined });
const { records } = services;

const PEOPLE = [randomUUID(), randomUUID()];
const RECORD_IDS = ['dev-1', 'DEV-1', 'dev-2'];
const time = (n: number) => new Date(Date.UTC(2026, 8, 1) + n * 3_600_000).toISOString();

type Event =
  | { kind: 'upsert'; recordId: string; person: number; at: number }
  | { kind: 'delete'; recordId: string; at: number };

/** Per record, distinct moments for its events; each event an upsert by one of two people or a deletion. */
const historyOf = (recordId: string) =>
  fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 4 }).chain((moments) =>
    fc.tuple(
      ...moments.map((at) =>
        fc.oneof(
          fc.constantFrom(0, 1).map((person): Event => ({ kind: 'upsert', recordId, person, at })),
          fc.constant<Event>({ kind: 'delete', recordId, at }),
        ),
      ),
    ),
  );

const scenario = fc
  .tuple(...RECORD_IDS.map(historyOf))
  .map((histories) => histories.flat())
  .chain((events) =>
    fc.tuple(
      fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }),
      fc.shuffledSubarray(events, { maxLength: 3 }),
    ),
  )
  // Redeliveries come late: a few events again at the end, in any order.
  .map(([shuffled, again]) => [...shuffled, ...again]);

async function apply(tenant: TenantScope, event: Event) {
  if (event.kind === 'delete') {
    await records.softDeleteRecord(tenant, 'usage', event.recordId, time(event.at));
  } else {
    await records.upsert(tenant, {
      category: 'usage',
      recordId: event.recordId,
      subject: { objectId: PEOPLE[event.person]!, upn: 'shared.device.user@contoso.com' },
      occurredAt: time(event.at),
      data: { at: event.at, person: event.person },
    });
  }
}

interface Expected {
  recordId: string;
  person: number;
  at: number;
  deletedAt?: string;
}

/** What the rules say is stored, from the set of events alone. */
function expectedState(events: readonly Event[]): Expected[] {
  return RECORD_IDS.flatMap((recordId) => {
    const mine = events.filter((e) => e.recordId === recordId);
    const latest = mine
      .filter((e): e is Extract<Event, { kind: 'upsert' }> => e.kind === 'upsert')
      .sort((a, b) => b.at - a.at)[0];
    if (!latest) return [];
    const covering = mine.filter((e) => e.kind === 'delete' && e.at >= latest.at).map((e) => e.at);
    return [
      {
        recordId,
        person: latest.person,
        at: latest.at,
        ...(covering.length > 0 ? { deletedAt: time(Math.min(...covering)) } : {}),
      },
    ];
  });
}

async function storedState(tenant: TenantScope, subjectKeys: string[]) {
  const found: Expected[] = [];
  for (const [person, subjectKey] of subjectKeys.entries()) {
    for await (const record of records.list(tenant, subjectKey, 'usage')) {
      expect(record.data.person).toBe(person);
      found.push({
        recordId: record.recordId,
        person,
        at: record.data.at as number,
        ...(record.deletedAt ? { deletedAt: record.deletedAt } : {}),
      });
    }
  }
  return found.sort((a, b) => a.recordId.localeCompare(b.recordId));
}

async function rows(table: TableClient, filter: string) {
  const found: Record<string, unknown>[] = [];
  for await (const row of table.listEntities({ queryOptions: { filter } })) found.push(row);
  return found;
}

/** The expiry entries of the tenant, as (action, subject, row, etag, day). */
async function expiryEntries(tenant: TenantScope) {
  const table = await tenant.account.table(TABLES.expiry);
  const all = await rows(
    table,
    `PartitionKey ge '${tenant.tenantId}_x' and PartitionKey lt '${tenant.tenantId}_y'`,
  );
  return all
    .map((row) => JSON.parse(row.entry as string) as Extract<ExpiryEntry, { kind: 'record' }>)
    .map((e) => `${e.action} ${e.subjectKey} ${e.recordRow} ${e.etag} ${e.day}`)
    .sort();
}

/** The entries the stored rows call for, each carrying its row's ETag. */
async function entriesOfStoredRows(tenant: TenantScope, subjectKeys: string[]) {
  const table = await tenant.account.table(TABLES.records);
  const wanted: string[] = [];
  for (const subjectKey of subjectKeys) {
    const partition = recordsPartition(tenant.tenantId, subjectKey);
    for (const row of await rows(table, `PartitionKey eq '${partition}' and RowKey lt '~'`)) {
      const { rowKey, etag, occurredAt, deletedAt } = row as Record<string, string>;
      const shortLived = dueDay(dueAt(RETENTION_POLICY.shortLived, new Date(occurredAt!)));
      wanted.push(`delete ${subjectKey} ${rowKey} ${etag} ${shortLived}`);
      if (deletedAt) {
        const purge = dueDay(dueAt(RETENTION_POLICY.softDeleted, new Date(deletedAt)));
        wanted.push(`purgeDeleted ${subjectKey} ${rowKey} ${etag} ${purge}`);
      }
    }
  }
  return wanted.sort();
}

describe('events in any order', () => {
  it('end in the state the rules give, with the expiry index true to the stored versions', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (events) => {
        const tenant = testTenantScope(storage);
        for (const event of events) await apply(tenant, event);
        const subjectKeys = await Promise.all(
          PEOPLE.map(async (objectId) => (await records.subjectOf(tenant, { objectId })).subjectKey),
        );
        expect(await storedState(tenant, subjectKeys)).toEqual(expectedState(events));
        expect(await expiryEntries(tenant)).toEqual(await entriesOfStoredRows(tenant, subjectKeys));
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
