// The pure rules of alert data requests: what a caller may send, which devices a request acts on, its
// lifecycle, its counts, when it has stalled, and what callers see of it.
import {
  advance,
  type AlertDataRequest,
  alertPackageOwner,
  countsOf,
  createAlertDataRequestSchema,
  distinctDevices,
  isStalled,
  newAlertDataRequest,
  STALLED_AFTER_MS,
  viewOf,
} from '../../../shared/alertRequests/alertDataRequest';
import { DomainError } from '../../../shared/errors';

const actor = { type: 'user' as const, id: 'soc', upn: 'soc@contoso.com' };
const worker = { type: 'system' as const, id: 'alert-data-work' };
const at = new Date('2026-03-01T10:00:00Z');
const later = (ms: number) => new Date(at.getTime() + ms);
const counts = { alerts: 2, restrictedAlertsLeftOut: 1, devicesWithoutAlerts: 0 };

const received = (): AlertDataRequest =>
  newAlertDataRequest(
    '0abc',
    'tenant',
    { action: 'extract', deviceNames: [' PC-1 ', 'pc-1', 'PC-2'], reason: ' incident ' },
    actor,
    at,
  );

describe('createAlertDataRequestSchema', () => {
  const valid = { action: 'delete', deviceNames: ['PC-1'], reason: 'retired' };
  const parse = (body: unknown) => createAlertDataRequestSchema.safeParse(body).success;

  it('takes 1 to 100 device names of up to 253 characters, an action and a reason', () => {
    expect(parse(valid)).toBe(true);
    expect(parse({ ...valid, action: 'extract' })).toBe(true);
    expect(parse({ ...valid, deviceNames: Array.from({ length: 100 }, (_, i) => `PC-${i}`) })).toBe(true);
    expect(parse({ ...valid, deviceNames: ['x'.repeat(253)] })).toBe(true);
    expect(parse({ ...valid, reason: 'x'.repeat(1000) })).toBe(true);
  });

  it.each([
    ['no device', { ...valid, deviceNames: [] }],
    ['101 devices', { ...valid, deviceNames: Array.from({ length: 101 }, (_, i) => `PC-${i}`) }],
    ['an empty name', { ...valid, deviceNames: ['  '] }],
    ['a name too long', { ...valid, deviceNames: ['x'.repeat(254)] }],
    ['a control character', { ...valid, deviceNames: ['PC\n1'] }],
    ['another action', { ...valid, action: 'export' }],
    ['no reason', { action: 'delete', deviceNames: ['PC-1'] }],
    ['a blank reason', { ...valid, reason: ' ' }],
    ['a reason too long', { ...valid, reason: 'x'.repeat(1001) }],
    ['an unknown field', { ...valid, subject: { upn: 'a@b.c' } }],
  ])('refuses %s', (_what, body) => {
    expect(parse(body)).toBe(false);
  });
});

describe('distinctDevices', () => {
  it('keeps each device once, by its first spelling, as device names are not case-sensitive', () => {
    expect(distinctDevices(['ADELE-PC', ' adele-pc', 'Ben-Laptop', 'ADELE-PC '])).toEqual([
      'ADELE-PC',
      'Ben-Laptop',
    ]);
  });
});

describe('newAlertDataRequest', () => {
  it('is received, names its distinct devices and its requester, and starts its history', () => {
    expect(received()).toEqual({
      id: '0abc',
      tenantId: 'tenant',
      action: 'extract',
      deviceNames: ['PC-1', 'PC-2'],
      reason: 'incident',
      status: 'received',
      requestedBy: actor,
      receivedAt: at.toISOString(),
      history: [{ action: 'create', to: 'received', at: at.toISOString(), actor }],
    });
  });
});

describe('advance', () => {
  it('goes received → inProgress → completed, with its times and counts', () => {
    const started = advance(received(), 'start', { actor: worker, at: later(1000) });
    expect(started).toMatchObject({ status: 'inProgress', startedAt: later(1000).toISOString() });
    const completed = advance(started, 'complete', { actor: worker, at: later(2000), result: counts });
    expect(completed).toMatchObject({
      status: 'completed',
      completedAt: later(2000).toISOString(),
      result: counts,
    });
    expect(completed.history.map((h) => [h.from, h.to])).toEqual([
      [undefined, 'received'],
      ['received', 'inProgress'],
      ['inProgress', 'completed'],
    ]);
  });

  it('fails from received or inProgress with a code and a reason', () => {
    const failure = { code: 'StorageUnavailable', reason: 'Storage did not answer.' };
    expect(advance(received(), 'fail', { actor: worker, at, failure })).toMatchObject({
      status: 'failed',
      failure: { ...failure, at: at.toISOString() },
    });
    const started = advance(received(), 'start', { actor: worker, at });
    expect(advance(started, 'fail', { actor: worker, at, failure }).status).toBe('failed');
  });

  it.each([
    ['start', 'inProgress'],
    ['complete', 'received'],
    ['complete', 'completed'],
    ['fail', 'completed'],
    ['start', 'failed'],
  ] as const)('refuses to %s a request that is %s (InvalidState)', (action, status) => {
    const request = { ...received(), status };
    expect(() => advance(request, action, { actor: worker, at, result: counts })).toThrow(
      expect.objectContaining({ code: 'InvalidState' }) as DomainError,
    );
  });

  it('does not complete without counts', () => {
    const started = advance(received(), 'start', { actor: worker, at });
    expect(() => advance(started, 'complete', { actor: worker, at })).toThrow(DomainError);
  });
});

describe('countsOf', () => {
  it('adds up the alerts and the restricted ones, and counts devices that yielded none at all', () => {
    expect(
      countsOf([
        { alerts: 2, restricted: 0 },
        { alerts: 0, restricted: 1 },
        { alerts: 0, restricted: 0 },
        { alerts: 3, restricted: 2 },
      ]),
    ).toEqual({ alerts: 5, restrictedAlertsLeftOut: 3, devicesWithoutAlerts: 1 });
    expect(countsOf([])).toEqual({ alerts: 0, restrictedAlertsLeftOut: 0, devicesWithoutAlerts: 0 });
  });
});

describe('isStalled', () => {
  it('holds once a working request has not moved or been resumed for 30 minutes', () => {
    const request = received();
    expect(isStalled(request, later(STALLED_AFTER_MS - 1))).toBe(false);
    expect(isStalled(request, later(STALLED_AFTER_MS))).toBe(true);
    const resumed = { ...request, progress: { stalls: 1, resumedAt: later(STALLED_AFTER_MS).toISOString() } };
    expect(isStalled(resumed, later(STALLED_AFTER_MS + 1000))).toBe(false);
    const started = advance(request, 'start', { actor: worker, at: later(STALLED_AFTER_MS) });
    expect(isStalled(started, later(STALLED_AFTER_MS + 1000))).toBe(false);
    const completed = advance(started, 'complete', { actor: worker, at, result: counts });
    expect(isStalled(completed, later(10 * STALLED_AFTER_MS))).toBe(false);
  });
});

describe('viewOf', () => {
  it('shows the device count and a package by its checksum and size only, never progress', () => {
    const started = advance(received(), 'start', { actor: worker, at });
    const completed = {
      ...advance(started, 'complete', { actor: worker, at, result: counts }),
      package: {
        blobName: 'tenant/0abc/attempt.zip.enc',
        packageRow: '~pkg_0abc_attempt',
        subjectKey: alertPackageOwner('0abc'),
        sha256: 'ab12',
        sizeBytes: 42,
        generatedAt: at.toISOString(),
      },
      progress: { counts, stalls: 1 },
    };
    const view = viewOf(completed);
    expect(view.deviceCount).toBe(2);
    expect(view.result).toEqual({ ...counts, package: { sha256: 'ab12', sizeBytes: 42 } });
    expect(view).not.toHaveProperty('package');
    expect(view).not.toHaveProperty('progress');
  });
});

describe('alertPackageOwner', () => {
  it('is never a subject key (those are hex HMACs) and is a valid table key part', () => {
    const owner = alertPackageOwner('0abc123');
    expect(owner).toBe('alertreq-0abc123');
    expect(owner).not.toMatch(/^[0-9a-f]+$/);
    expect(owner).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
  });
});
