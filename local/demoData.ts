// Sample personal data for the demo tenant: a few people with records in every category, sent through
// the same queue function as real events (each device's check-in as one `records.upserted` batch, as the
// platform sends it), so a newcomer can run a request end to end at once.
import { EVENT_CATEGORIES } from '../shared/vocabulary/categories';

const PEOPLE = [
  {
    upn: 'adele.vance@contoso.com',
    objectId: '4f1d3a52-8c1e-4b7a-9a44-5d2c0e6b7a01',
    device: 'CONTOSO-ADELE-01',
    name: 'Adele Vance',
  },
  {
    upn: 'megan.bowen@contoso.com',
    objectId: '7b2e4c63-9d2f-4c8b-8b55-6e3d1f7c8b02',
    device: 'CONTOSO-MEGAN-01',
    name: 'Megan Bowen',
  },
  {
    upn: 'lee.gu@contoso.com',
    objectId: '9c3f5d74-0e30-4d9c-9c66-7f4e2a8d9c03',
    device: 'CONTOSO-LEE-01',
    name: 'Lee Gu',
  },
] as const;

const SAMPLE_DATA: Record<
  (typeof EVENT_CATEGORIES)[number],
  (person: (typeof PEOPLE)[number]) => Record<string, unknown>
> = {
  device: (p) => ({
    model: 'Surface Laptop 7',
    serialNumber: `SN-${p.objectId.slice(0, 8)}`,
    primaryUser: p.upn,
  }),
  deviceSecurity: () => ({ bitLocker: 'enabled', tpm: '2.0', secureBoot: true }),
  deviceHealth: () => ({ batteryHealthPercent: 91, diskFreeGb: 212 }),
  deviceDiagnostics: () => ({ lastCrash: 'none', uptimeHours: 52 }),
  directory: (p) => ({
    displayName: p.name,
    department: 'Sales',
    officeLocation: 'Berlin',
    mobilePhone: '+49 30 1234567',
  }),
  policy: () => ({ policy: 'Windows compliance baseline', state: 'compliant' }),
  alert: (p) => ({
    severity: 'medium',
    title: 'Suspicious sign-in',
    reportedBy: 'security@contoso.com',
    user: p.upn,
  }),
  windowsDiagnostic: () => ({ osBuild: '26100.2314', updateRing: 'Broad' }),
  usage: () => ({ appsLaunched: 37, activeHours: 6.5 }),
  systemLog: (p) => ({ message: `Enrollment sync completed for ${p.upn}` }),
};

/** `record.upserted` events for the demo tenant, their times a few days before `now`. */
export function demoRecordEvents(tenantId: string, now: Date): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  PEOPLE.forEach((person, p) => {
    EVENT_CATEGORIES.forEach((category, c) => {
      const occurredAt = new Date(now.getTime() - (1 + p + c) * 24 * 3600 * 1000);
      events.push({
        type: 'record.upserted',
        tenantId,
        eventId: `demo-${person.objectId}-${category}`,
        category,
        recordId: `demo-${category}-${person.objectId}`,
        subject: { upn: person.upn, objectId: person.objectId },
        occurredAt: occurredAt.toISOString(),
        data: SAMPLE_DATA[category](person),
        deviceName: person.device,
      });
    });
  });
  return events;
}

/** What a device reports when it checks in: sent together, as one batch per device. */
export const CHECK_IN_CATEGORIES = [
  'device',
  'deviceSecurity',
  'deviceHealth',
  'deviceDiagnostics',
  'windowsDiagnostic',
  'policy',
] as const;

/**
 * The demo's queue messages: per person, the device's check-in as one `records.upserted` batch (its items
 * the `record.upserted` events without type and tenant), and the person's other records as single events.
 */
export function demoRecordMessages(tenantId: string, now: Date): Record<string, unknown>[] {
  const events = demoRecordEvents(tenantId, now);
  const messages: Record<string, unknown>[] = [];
  for (const person of PEOPLE) {
    const own = events.filter((event) => event.deviceName === person.device);
    const checkIn = own.filter((event) =>
      (CHECK_IN_CATEGORIES as readonly string[]).includes(String(event.category)),
    );
    messages.push({
      type: 'records.upserted',
      tenantId,
      eventId: `demo-${person.objectId}-check-in`,
      records: checkIn.map(({ type: _type, tenantId: _tenantId, ...item }) => item),
    });
    messages.push(...own.filter((event) => !checkIn.includes(event)));
  }
  return messages;
}
