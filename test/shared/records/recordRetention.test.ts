// Integration on Azurite: the purge deletes only the version it was due for (SPEC §6, last sentence), and
// an anonymised alert keeps nothing that names or links to anyone.
import { randomUUID } from 'node:crypto';

import { anonymousPartition } from '../../../shared/records/recordRetention';
import { createRecordServices } from '../../../shared/records/recordServices';
import type { UpsertInput } from '../../../shared/records/recordStore';
import type { StoredExpiryEntry } from '../../../shared/retention/expiryIndex';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { TABLES } from '../../../shared/storage/names';
import { testStorage, testTenantScope } from '../../support/testStorage';

const storage = testStorage();
const services = createRecordServices({ transferPackages: async () => undefined });
const { records, retention, expiry } = services;

const person = { objectId: randomUUID(), upn: 'adele.vance@contoso.com' };
const usage = (occurredAt: string, data: Record<string, unknown> = { apps: 3 }): UpsertInput => ({
  category: 'usage',
  recordId: 'usage-1',
  subject: person,
  occurredAt,
  data,
  deviceName: 'ADELE-PC',
});

async function dueEntries(tenant: TenantScope, day: string) {
  const entries: StoredExpiryEntry[] = [];
  for await (const page of expiry.due(tenant, day)) entries.push(...page);
  return entries;
}

/** The records that entries of one action name, at the versions they were written for. */
const targetsOf = (entries: StoredExpiryEntry[], action: 'delete' | 'anonymise') =>
  entries.flatMap((entry) =>
    entry.kind === 'record' && entry.action === action
      ? [
          {
            subjectKey: entry.subjectKey,
            recordRow: entry.recordRow,
            deviceKey: entry.deviceKey,
            etag: entry.etag,
          },
        ]
      : [],
  );

/** What the purge does with a round of entries: carry them out, then mark them done. */
async function purge(tenant: TenantScope, entries: StoredExpiryEntry[]) {
  const counts = await retention.deleteRecords(tenant, targetsOf(entries, 'delete'));
  await expiry.done(tenant, entries);
  return counts;
}

async function stored(tenant: TenantScope) {
  const subjectKey = (await records.subjectOf(tenant, person)).subjectKey;
  const found: unknown[] = [];
  for await (const record of records.list(tenant, subjectKey, 'usage')) found.push(record.data);
  return found;
}

describe('a purge interleaved with writes', () => {
  it('leaves a record written again, newer, between the purge reading its entry and deleting it', async () => {
    const tenant = testTenantScope(storage);
    await records.upsert(tenant, usage('2026-01-01T10:00:00Z', { v: 'old' }));
    const entries = await dueEntries(tenant, '2026-01-31');
    expect(entries).toHaveLength(1);
    await records.upsert(tenant, usage('2026-01-15T10:00:00Z', { v: 'new' }));
    expect(await purge(tenant, entries)).toEqual({});
    expect(await stored(tenant)).toEqual([{ v: 'new' }]);
    // Its lookups are whole: the retired device finds it, and so does a deletion of the record.
    expect(await records.softDeleteDevice(tenant, 'adele-pc', '2026-01-18T00:00:00Z')).toBe(1);
    expect(await records.softDeleteRecord(tenant, 'usage', 'usage-1', '2026-01-17T00:00:00Z')).toBe(
      'deleted',
    );
    // Its own entry, 30 days after the newer occurrence, is still there and purges it then.
    expect(await purge(tenant, await dueEntries(tenant, '2026-02-14'))).toEqual({ usage: 1 });
    expect(await stored(tenant)).toEqual([]);
  });

  it('purges a version delivered again during the purge: it is the very version the entry meant', async () => {
    const tenant = testTenantScope(storage);
    await records.upsert(tenant, usage('2026-01-01T10:00:00Z'));
    const entries = await dueEntries(tenant, '2026-01-31');
    expect(await records.upsert(tenant, usage('2026-01-01T10:00:00Z'))).toBe('stored');
    expect(await purge(tenant, entries)).toEqual({ usage: 1 });
    expect(await stored(tenant)).toEqual([]);
    expect(await dueEntries(tenant, '2026-12-31')).toEqual([]);
  });

  it('leaves a record deleted meanwhile, and purges it by its new entry', async () => {
    const tenant = testTenantScope(storage);
    await records.upsert(tenant, usage('2026-01-01T10:00:00Z'));
    const entries = await dueEntries(tenant, '2026-01-31');
    expect(await records.softDeleteRecord(tenant, 'usage', 'usage-1', '2026-01-02T00:00:00Z')).toBe(
      'deleted',
    );
    expect(await purge(tenant, entries)).toEqual({});
    expect(await stored(tenant)).toHaveLength(1);
    // The entries of the deleted version: the short-lived rule's day again, and the soft-deletion one.
    expect(await purge(tenant, await dueEntries(tenant, '2026-01-31'))).toEqual({ usage: 1 });
    expect(await stored(tenant)).toEqual([]);
  });

  it('deletes the version it meant when nothing changed, with its lookups', async () => {
    const tenant = testTenantScope(storage);
    await records.upsert(tenant, usage('2026-01-01T10:00:00Z'));
    expect(await purge(tenant, await dueEntries(tenant, '2026-01-31'))).toEqual({ usage: 1 });
    const lookups = await tenant.account.table(TABLES.recordLookup);
    const left: string[] = [];
    for await (const row of lookups.listEntities()) {
      if (row.partitionKey!.startsWith(tenant.tenantId) && !row.partitionKey!.includes('_i')) {
        left.push(row.partitionKey!);
      }
    }
    expect(left).toEqual([]);
  });
});

/** A Microsoft Defender for Endpoint alert as the platform would collect it. */
const defenderAlert = {
  id: 'da637551227677560813_-961444813',
  incidentId: 7712,
  severity: 'High',
  status: 'New',
  title: 'Suspicious process injection observed',
  description:
    'A process on CONTOSO-ADELE-01 injected code into lsass.exe. Adele Vance (adele.vance@contoso.com) was signed in.',
  category: 'DefenseEvasion',
  detectionSource: 'WindowsDefenderAtp',
  mitreTechniques: ['T1055', 'T1003.001'],
  machineId: '111e6dd8c833c8a052ea231ec1b19adaf497b625',
  computerDnsName: 'contoso-adele-01.contoso.local',
  firstEventTime: '2026-01-02T09:10:11Z',
  lastEventTime: '2026-01-02T09:12:00Z',
  relatedUser: { userName: 'adele.vance', domainName: 'CONTOSO' },
  evidence: [
    {
      entityType: 'Process',
      fileName: 'rundll32.exe',
      processCommandLine: 'rundll32.exe C:\\Users\\adele.vance\\AppData\\Local\\Temp\\x.dll,Start',
      accountName: 'adele.vance',
      userPrincipalName: 'adele.vance@contoso.com',
      aadUserId: person.objectId,
    },
    { entityType: 'Ip', ipAddress: '10.20.30.40' },
  ],
};

describe('alert anonymisation', () => {
  it('keeps only fields that name no one: no identifier of the alert survives anywhere in the stored row', async () => {
    const tenant = testTenantScope(storage);
    await records.upsert(tenant, {
      category: 'alert',
      recordId: defenderAlert.id,
      subject: person,
      occurredAt: '2026-01-02T09:10:11Z',
      data: defenderAlert,
      deviceName: 'CONTOSO-ADELE-01',
    });
    const entries = await dueEntries(tenant, '2026-07-01');
    expect(await retention.anonymiseAlerts(tenant, targetsOf(entries, 'anonymise'))).toBe(1);

    const table = await tenant.account.table(TABLES.records);
    const rows: Record<string, unknown>[] = [];
    for await (const row of table.listEntities({
      queryOptions: { filter: `PartitionKey eq '${anonymousPartition(tenant.tenantId)}'` },
    })) {
      rows.push(row);
    }
    expect(rows).toHaveLength(1);
    const raw = JSON.stringify(rows[0]).toLowerCase();
    const identifiers = [
      'adele',
      'vance',
      'contoso',
      person.objectId,
      '10.20.30.40',
      'lsass',
      'rundll32',
      'appdata',
      defenderAlert.id,
      defenderAlert.machineId,
      '7712',
      'x.dll',
    ];
    for (const identifier of identifiers) expect(raw).not.toContain(identifier.toLowerCase());
    expect(JSON.parse(rows[0]!.anonymised as string)).toEqual({
      severity: 'High',
      status: 'New',
      title: 'Suspicious process injection observed',
      category: 'DefenseEvasion',
      detectionSource: 'WindowsDefenderAtp',
      mitreTechniques: ['T1055', 'T1003.001'],
      firstEventTime: '2026-01-02T09:10:11Z',
      lastEventTime: '2026-01-02T09:12:00Z',
    });
    // The alert left its subject: requests no longer find it; its 2-year deletion is entered.
    expect(
      await records.countByCategory(tenant, (await records.subjectOf(tenant, person)).subjectKey),
    ).toEqual({});
    const later = await dueEntries(tenant, '2028-01-02');
    expect(later.map((e) => e.kind)).toContain('anonymousRecord');
  });
});
