// Integration: the personal-data-events queue function on Azurite, called as the host calls it.
import { randomUUID } from 'node:crypto';

import { personalDataEvents } from '../../functions/personalDataEvents';
import { createServices, type Services } from '../../shared/composition';
import { DomainError } from '../../shared/errors';
import { type PoisonedMessage, SCHEMA_MISMATCH } from '../../shared/hosting/queueFailures';
import { invokeQueue } from '../../shared/hosting/invoke';
import { QUEUES } from '../../shared/storage/names';
import { decodeMessage } from '../../shared/storage/queueMessages';
import { invocationContext } from '../support/invocation';
import { testConfig } from '../support/testStorage';

const services = createServices(testConfig());

const provisioned = (tenantId: string, countryCode: string, eventId = `e-${tenantId}`) => ({
  type: 'tenant.provisioned',
  tenantId,
  eventId,
  countryCode,
  displayName: 'Fabrikam',
});

const deliver = (message: unknown, svc: Services = services, dequeueCount = 1) =>
  invokeQueue(personalDataEvents, svc, message, invocationContext('personalDataEvents', { dequeueCount }));

async function poisoned(match: (message: PoisonedMessage) => boolean): Promise<PoisonedMessage | undefined> {
  const queue = await services.storage.global.queue(QUEUES.personalDataEventsPoison);
  const { peekedMessageItems } = await queue.peekMessages({ numberOfMessages: 32 });
  return peekedMessageItems.map((m) => decodeMessage(m.messageText) as PoisonedMessage).find(match);
}

describe('personalDataEvents: tenant.provisioned', () => {
  it.each([
    ['DE', 'EU'],
    ['US', 'NA'],
    ['CH', 'CH'],
    ['AU', 'AU'],
    ['JP', 'APAC'],
  ])('enters a tenant of %s in geography %s and audits it in its own log', async (country, geography) => {
    const tenantId = randomUUID();
    await deliver(provisioned(tenantId, country));
    const entry = await services.directory.get(tenantId);
    expect(entry).toMatchObject({
      tenantId,
      countryCode: country,
      geography,
      status: 'active',
      displayName: 'Fabrikam',
    });
    const events = await services.audit.list(services.directory.scopeOf(entry!), {}, { top: 10 });
    expect(events.items.map((e) => [e.action, e.target.id, e.details.geography])).toEqual([
      ['tenant.provisioned', tenantId, geography],
    ]);
  });

  it('changes nothing on redelivery, and the geography never changes by itself', async () => {
    const tenantId = randomUUID();
    // CH is closed at first: the Swiss tenant goes to EU.
    const servicesWithoutCh = createServices(testConfig({}, ['STORAGE_CH']));
    expect(servicesWithoutCh.storage.openGeographies().has('CH')).toBe(false);
    await deliver(provisioned(tenantId, 'CH'), servicesWithoutCh);
    // Redelivered once CH is open: still EU, and still one audit event.
    await deliver(provisioned(tenantId, 'CH'));
    await deliver(provisioned(tenantId, 'CH'));
    const entry = await services.directory.get(tenantId);
    expect(entry?.geography).toBe('EU');
    const events = await services.audit.list(services.directory.scopeOf(entry!), {}, { top: 10 });
    expect(events.items).toHaveLength(1);
  });
});

describe('personalDataEvents: transient failures are retried, not poisoned', () => {
  it('a busy audit chain (Conflict) makes the delivery fail for redelivery, and the next one succeeds', async () => {
    const tenantId = randomUUID();
    const append = services.audit.append.bind(services.audit);
    const busy = jest
      .spyOn(services.audit, 'append')
      .mockRejectedValueOnce(new DomainError('Conflict', 'The audit log is busy; retry later.'));
    await expect(deliver(provisioned(tenantId, 'DE'))).rejects.toThrow('busy');
    busy.mockImplementation(append);
    await deliver(provisioned(tenantId, 'DE'), services, 2);
    const entry = await services.directory.get(tenantId);
    const events = await services.audit.list(services.directory.scopeOf(entry!), {}, { top: 10 });
    expect(events.items.map((e) => e.action)).toEqual(['tenant.provisioned']);
    expect(await poisoned((m) => m.tenantId === tenantId)).toBeUndefined();
    busy.mockRestore();
  });
});

describe('personalDataEvents: events that cannot be processed are kept with their reason', () => {
  it('puts a schema violation in the poison queue with the failing fields', async () => {
    const eventId = `bad-${randomUUID()}`;
    await deliver({ type: 'tenant.provisioned', tenantId: 'not-a-guid', eventId, countryCode: 'Germany' });
    const kept = await poisoned((m) => m.eventId === eventId);
    // No tenant this payload could be sealed for: it is dropped, and only the event id stays.
    expect(kept).toMatchObject({
      queue: QUEUES.personalDataEvents,
      reason: 'The message does not match the schema.',
      dequeueCount: 1,
      eventId,
    });
    expect(kept).not.toHaveProperty('message');
    expect(kept).not.toHaveProperty('reference');
    expect(kept?.details).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ target: 'tenantId' }),
        expect.objectContaining({ target: 'countryCode' }),
      ]),
    );
  });

  it('poisons a message that is not even JSON, and keeps nothing of it', async () => {
    const text = `plain text ${randomUUID()}`;
    const poison = jest.spyOn(services.poison, 'put');
    await deliver(text);
    expect(poison).toHaveBeenCalledWith(
      QUEUES.personalDataEvents,
      text,
      SCHEMA_MISMATCH,
      expect.anything(),
      expect.anything(),
    );
    const queue = await services.storage.global.queue(QUEUES.personalDataEventsPoison);
    const { peekedMessageItems } = await queue.peekMessages({ numberOfMessages: 32 });
    expect(peekedMessageItems.some((m) => m.messageText.includes(Buffer.from(text).toString('base64')))).toBe(
      false,
    );
    expect(JSON.stringify(peekedMessageItems.map((m) => decodeMessage(m.messageText)))).not.toContain(text);
    poison.mockRestore();
  });

  it("keeps an invalid event of a known tenant out of the global account, sealed in the tenant's geography", async () => {
    const tenantId = randomUUID();
    await deliver(provisioned(tenantId, 'DE'));
    const eventId = `sealed-${randomUUID()}`;
    const event = {
      type: 'record.upserted',
      tenantId,
      eventId,
      category: 'browserHistory',
      recordId: 'r1',
      subject: { upn: 'adele.vance@contoso.com' },
      occurredAt: '2026-01-01T00:00:00Z',
      data: { visited: 'https://contoso.sharepoint.com/sites/adele' },
    };
    await deliver(event);
    const kept = await poisoned((m) => m.eventId === eventId);
    expect(kept).toMatchObject({ tenantId, reason: 'The message does not match the schema.' });
    expect(JSON.stringify(kept)).not.toMatch(/adele|sharepoint/);
    const tenant = await services.directory.resolve(tenantId);
    expect(kept?.reference).toMatch(new RegExp(`^poisoned-events/${tenantId}/`));
    // The sealed blob names no one either; the service can still open it for an investigation.
    const container = await tenant.account.container('poisoned-events');
    const raw = await container
      .getBlobClient(kept!.reference!.slice('poisoned-events/'.length))
      .downloadToBuffer();
    expect(raw.toString('utf8')).not.toMatch(/adele|sharepoint/);
    expect(await services.poisonedEvents.read(tenant, kept!.reference!)).toEqual(event);
  });

  it('puts a tenant of a code that names no country in the poison queue', async () => {
    const tenantId = randomUUID();
    await deliver(provisioned(tenantId, 'XX'));
    expect(await services.directory.get(tenantId)).toBeUndefined();
    const kept = await poisoned((m) => m.tenantId === tenantId);
    expect(kept?.reason).toMatch(/^NotEligible: Country XX is not served/);
  });

  it.each([
    ['GB', 'EU'],
    ['CA', 'NA'],
    ['BR', 'NA'],
    ['ZA', 'EU'],
  ])('enters a tenant of %s, once not served, in %s', async (country, geography) => {
    const tenantId = randomUUID();
    await deliver(provisioned(tenantId, country));
    expect(await services.directory.get(tenantId)).toMatchObject({ geography, status: 'active' });
  });

  it('keeps a record event of a tenant that does not exist, with the reason', async () => {
    const eventId = `rec-${randomUUID()}`;
    await deliver({
      type: 'device.retired',
      tenantId: randomUUID(),
      eventId,
      deviceName: 'PC-1',
      deletedAt: '2026-01-01T00:00:00Z',
    });
    expect((await poisoned((m) => m.eventId === eventId))?.reason).toMatch(/^TenantNotFound: /);
  });

  it('keeps a record of an unknown category, with the failing field', async () => {
    const eventId = `cat-${randomUUID()}`;
    await deliver({
      type: 'record.upserted',
      tenantId: randomUUID(),
      eventId,
      category: 'browserHistory',
      recordId: 'r1',
      subject: { upn: 'a@b.c' },
      occurredAt: '2026-01-01T00:00:00Z',
      data: {},
    });
    const kept = await poisoned((m) => m.eventId === eventId);
    expect(kept?.details).toEqual(expect.arrayContaining([expect.objectContaining({ target: 'category' })]));
  });

  it('counts poisoned messages in the health report', async () => {
    const health = await (
      await import('../../shared/health/healthReport')
    ).healthReport(services.storage, services.poison);
    expect(health.poisonMessages[QUEUES.personalDataEventsPoison]).toBeGreaterThanOrEqual(3);
    expect(health.status).toBe('healthy');
    expect(Object.keys(health.storage).sort()).toEqual(['APAC', 'AU', 'CH', 'EU', 'GLOBAL', 'IN', 'NA']);
  });
});

describe('personalDataEvents: records', () => {
  const upserted = (
    tenantId: string,
    recordId: string,
    occurredAt: string,
    data: Record<string, unknown>,
  ) => ({
    type: 'record.upserted',
    tenantId,
    eventId: `up-${recordId}-${occurredAt}`,
    category: 'directory',
    recordId,
    subject: { upn: 'adele@contoso.com' },
    occurredAt,
    data,
  });

  it('stores a record in its tenant geography; redelivery and older events change nothing', async () => {
    const tenantId = randomUUID();
    await deliver(provisioned(tenantId, 'US'));
    const newer = upserted(tenantId, 'r1', '2026-10-02T00:00:00Z', { department: 'Sales' });
    await deliver(newer);
    await deliver(newer);
    await deliver(upserted(tenantId, 'r1', '2026-10-01T00:00:00Z', { department: 'Old' }));
    const tenant = await services.directory.resolve(tenantId);
    expect(tenant.geography).toBe('NA');
    const subjectKey = (await services.records.subjectOf(tenant, { upn: 'adele@contoso.com' })).subjectKey;
    const stored = [];
    for await (const record of services.records.list(tenant, subjectKey, 'directory'))
      stored.push(record.data);
    expect(stored).toEqual([{ department: 'Sales' }]);
  });

  it('audits a subject deletion once, however often it is delivered', async () => {
    const tenantId = randomUUID();
    await deliver(provisioned(tenantId, 'DE'));
    await deliver(upserted(tenantId, 'r2', '2026-10-02T00:00:00Z', { a: 1 }));
    const deletion = {
      type: 'subject.deleted',
      tenantId,
      eventId: `del-${tenantId}`,
      subject: { upn: 'adele@contoso.com' },
      deletedAt: '2026-10-03T00:00:00Z',
    };
    await deliver(deletion);
    await deliver(deletion);
    const tenant = await services.directory.resolve(tenantId);
    const events = await services.audit.list(tenant, { action: 'records.subjectDeleted' }, { top: 10 });
    expect(events.items.map((e) => e.details)).toEqual([{ softDeleted: 1 }]);
  });

  it('records the end of a subscription in the directory', async () => {
    const tenantId = randomUUID();
    await deliver(provisioned(tenantId, 'DE'));
    const ended = {
      type: 'tenant.subscriptionEnded',
      tenantId,
      eventId: `end-${tenantId}`,
      endedAt: '2026-11-01T00:00:00Z',
    };
    await deliver(ended);
    await deliver({ ...ended, eventId: 'again', endedAt: '2026-11-05T00:00:00Z' });
    expect(await services.directory.get(tenantId)).toMatchObject({
      status: 'subscriptionEnded',
      subscriptionEndedAt: '2026-11-01T00:00:00Z',
    });
  });
});
