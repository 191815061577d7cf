// Integration: the personal-data-events queue function on Azurite, called as the host calls it.
import { randomUUID } from 'node:crypto';

import { personalDataEvents } from '../../functions/personalDataEvents';
import { createServices, type Services } from '../../shared/composition';
import type { PoisonedMessage } from '../../shared/hosting/queueFailures';
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

describe('personalDataEvents: events that cannot be processed are kept with their reason', () => {
  it('puts a schema violation in the poison queue with the failing fields', async () => {
    const eventId = `bad-${randomUUID()}`;
    await deliver({ type: 'tenant.provisioned', tenantId: 'not-a-guid', eventId, countryCode: 'Germany' });
    const kept = await poisoned((m) => (m.message as { eventId?: string }).eventId === eventId);
    expect(kept).toMatchObject({
      queue: QUEUES.personalDataEvents,
      reason: 'The event does not match the schema.',
      dequeueCount: 1,
      message: { eventId, countryCode: 'Germany' },
    });
    expect(kept?.details).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ target: 'tenantId' }),
        expect.objectContaining({ target: 'countryCode' }),
      ]),
    );
  });

  it('keeps a message that is not even JSON', async () => {
    const text = `plain text ${randomUUID()}`;
    await deliver(text);
    expect(await poisoned((m) => m.message === text)).toMatchObject({
      reason: 'The event does not match the schema.',
    });
  });

  it('puts a tenant from a country no geography serves in the poison queue', async () => {
    const tenantId = randomUUID();
    await deliver(provisioned(tenantId, 'BR'));
    expect(await services.directory.get(tenantId)).toBeUndefined();
    const kept = await poisoned((m) => (m.message as { tenantId?: string }).tenantId === tenantId);
    expect(kept?.reason).toMatch(/^NotEligible: Country BR is not served/);
  });

  it('keeps record events, which the records capability will process, instead of dropping them', async () => {
    const eventId = `rec-${randomUUID()}`;
    await deliver({
      type: 'device.retired',
      tenantId: randomUUID(),
      eventId,
      deviceName: 'PC-1',
      deletedAt: '2026-01-01T00:00:00Z',
    });
    expect((await poisoned((m) => (m.message as { eventId?: string }).eventId === eventId))?.reason).toMatch(
      /not processed yet/,
    );
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
