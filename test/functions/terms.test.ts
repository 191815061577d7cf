// Terms and privacy statement (SPEC §10) on the local host: numbered versions bound to their text by SHA-256,
// per language with the default language as fallback; acceptance of exactly the current text (a stale
// version or a wrong hash refused); re-acceptance when a version asks for it; withdrawal recorded; the
// admins' listing; every publication, acceptance and withdrawal in the audit chain; and acceptances as
// personal data that requests discover, export, refuse to rectify and erase.
import { createHash, randomUUID } from 'node:crypto';

import { startTestHost, type TestHost } from '../support/testHost';
import { until } from '../support/until';
import { readZip } from '../support/zip';

let host: TestHost;
let tenantId: string;
let admin: string;
let reader: string;
const ada = { objectId: randomUUID(), upn: `ada-${randomUUID().slice(0, 6)}@contoso.com` };
let adaToken: string;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const EN_V1 = 'Contoso may manage your device.\nWe collect the device name, model and compliance state.';
// Long enough to be stored in several parts, with characters outside ASCII.
const DE_V2 = `Nutzungsbedingungen für Geräte – Übersicht.\n${'Daten über Ihr Gerät werden verarbeitet. '.repeat(1100)}`;

beforeAll(async () => {
  host = await startTestHost();
  tenantId = await host.provisionTenant('DE');
  admin = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'], upn: 'dpo@contoso.com' });
  reader = await host.issuer.token({ tenantId, roles: ['Privacy.Reader'] });
  adaToken = await host.issuer.token({ tenantId, objectId: ada.objectId, upn: ada.upn });
});
afterAll(() => host.stop());

const api = (path: string) => `/api/tenants/${tenantId}/terms${path}`;
const publish = (body: unknown, token = admin) => host.call('PUT', api(''), { token, body });
const accept = (body: unknown, token = adaToken) => host.call('POST', api('/acceptances'), { token, body });
const mine = (token = adaToken) => host.call('GET', api('/acceptances/me'), { token });

describe('terms and acceptances', () => {
  it('publish, show per language, accept exactly the current text, re-accept, withdraw, audited', async () => {
    expect((await host.call('GET', api(''), { token: adaToken })).status).toBe(404);
    expect((await publish({ language: 'en', title: 'T', text: 'x' }, reader)).status).toBe(403);
    expect((await publish({ language: 'en', title: 'T', text: 'x' }, adaToken)).status).toBe(403);
    for (const body of [
      { language: 'english!', title: 'T', text: 'x' },
      { language: 'en', title: 'T', text: '' },
      { language: 'en', title: 'T', text: 'x', extra: true },
    ]) {
      expect((await publish(body)).body.error.code).toBe('ValidationFailed');
    }

    const v1 = await publish({
      language: 'en',
      title: 'Device terms',
      summary: 'What we collect',
      text: EN_V1,
    });
    expect(v1.status).toBe(201);
    expect(v1.body).toMatchObject({
      version: 1,
      language: 'en',
      sha256: sha256(EN_V1),
      defaultLanguage: 'en',
    });
    const v2 = await publish({ language: 'DE', title: 'Gerätebedingungen', text: DE_V2 });
    expect(v2.body).toMatchObject({ version: 2, language: 'de', sha256: sha256(DE_V2) });

    const shown = async (query: string) =>
      (await host.call('GET', api(query), { token: adaToken })).body as { version: number; text: string };
    expect((await shown('?language=de')).text).toBe(DE_V2);
    expect((await shown('?language=de-CH')).version).toBe(2);
    expect((await shown('?language=fr')).version).toBe(1);
    expect(await shown('')).toMatchObject({ version: 1, text: EN_V1 });
    const versions = await host.call('GET', api('/versions'), { token: adaToken });
    expect(versions.body.value.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    expect(versions.body.value[0].text).toBeUndefined();

    // Only exactly the current text is accepted.
    for (const [body, target] of [
      [{ version: 1, sha256: sha256(`${EN_V1} `) }, 'sha256'],
      [{ version: 2, sha256: sha256(EN_V1) }, 'sha256'],
      [{ version: 99, sha256: sha256(EN_V1) }, undefined],
    ] as const) {
      const refused = await accept(body);
      expect({ status: refused.status, code: refused.body.error.code }).toEqual({
        status: 409,
        code: 'InvalidState',
      });
      if (target) expect(refused.body.error.details[0].target).toBe(target);
    }
    const accepted = await accept({ version: 1, sha256: sha256(EN_V1), deviceName: 'ADA-LAPTOP' });
    expect(accepted.status).toBe(201);
    expect(accepted.body).toMatchObject({
      objectId: ada.objectId,
      version: 1,
      language: 'en',
      deviceName: 'ADA-LAPTOP',
      acceptedLatest: true,
    });

    // A correction that does not ask for re-acceptance: Ada's still stands, but version 1 is stale now.
    const EN_V3 = `${EN_V1}\nTypo fixed.`;
    await publish({ language: 'en', title: 'Device terms', text: EN_V3 });
    expect((await mine()).body.value[0]).toMatchObject({
      version: 1,
      acceptedLatest: true,
      currentVersion: 3,
    });
    expect((await accept({ version: 1, sha256: sha256(EN_V1) })).body.error.details[0]).toMatchObject({
      target: 'version',
    });
    // A version that asks for re-acceptance: Ada's no longer stands until she accepts it.
    const EN_V4 = `${EN_V3}\nWe now also collect installed apps.`;
    await publish({ language: 'en', title: 'Device terms', text: EN_V4, requireReacceptance: true });
    expect((await mine()).body.value[0]).toMatchObject({
      version: 1,
      acceptedLatest: false,
      currentVersion: 4,
    });
    expect((await accept({ version: 4, sha256: sha256(EN_V4) })).body.acceptedLatest).toBe(true);

    const listed = await host.call('GET', api('/acceptances'), { token: reader });
    expect(listed.status).toBe(200);
    expect(listed.body.value).toEqual([
      expect.objectContaining({ objectId: ada.objectId, upn: ada.upn, version: 4, acceptedLatest: true }),
    ]);
    expect((await host.call('GET', api('/acceptances'), { token: adaToken })).status).toBe(403);
    // A restricted subject is left out of the listing (SPEC §5: restricted data is only stored).
    const tenant = await host.services.directory.resolve(tenantId);
    const adaKey = (await host.services.records.subjectOf(tenant, { objectId: ada.objectId })).subjectKey;
    await host.services.restrictions.restrict(tenant, {
      subjectKey: adaKey,
      subject: { objectId: ada.objectId },
      requestId: 'restricted-by-test',
      restrictedAt: new Date().toISOString(),
    });
    expect((await host.call('GET', api('/acceptances'), { token: reader })).body.value).toEqual([]);
    await host.services.restrictions.lift(tenant, adaKey);

    const withdrawn = await host.call('DELETE', api('/acceptances/me'), { token: adaToken });
    expect(withdrawn.status).toBe(200);
    expect(withdrawn.body.value[0]).toMatchObject({ version: 4, acceptedLatest: false });
    expect(withdrawn.body.value[0].withdrawnAt).toEqual(expect.any(String));
    const after = (await mine()).body.value[0];
    expect(after.history.map((h: { action: string; version: number }) => `${h.action} ${h.version}`)).toEqual(
      ['accepted 1', 'accepted 4', 'withdrawn 4'],
    );
    expect((await host.call('DELETE', api('/acceptances/me'), { token: adaToken })).status).toBe(404);
    expect((await host.call('GET', api('/acceptances'), { token: admin })).body.value[0]).toMatchObject({
      acceptedLatest: false,
      withdrawnAt: after.withdrawnAt,
    });

    const audit = async (action: string) =>
      (await host.call('GET', `/api/tenants/${tenantId}/audit?action=${action}`, { token: reader })).body
        .value;
    expect(
      (await audit('terms.published')).map((e: { details: { version: number } }) => e.details.version),
    ).toEqual([1, 2, 3, 4]);
    const acceptances = await audit('terms.accepted');
    expect(acceptances).toHaveLength(2);
    expect(acceptances[1]).toMatchObject({
      actor: { type: 'user', id: ada.objectId },
      details: { version: 4, sha256: sha256(EN_V4) },
    });
    expect(await audit('terms.withdrawn')).toHaveLength(1);
  });

  it('are discovered, exported, refused rectification and erased by requests', async () => {
    const subject = { objectId: ada.objectId };
    const run = async (body: Record<string, unknown>) => {
      const created = await host.call('POST', `/api/tenants/${tenantId}/dsr`, { token: admin, body });
      const status = () =>
        host.call('GET', `/api/tenants/${tenantId}/dsr/${created.body.id}`, { token: admin });
      const reviewed = await until(status, (r) => r.body.status === 'awaitingReview', 'review');
      await host.call('POST', `/api/tenants/${tenantId}/dsr/${created.body.id}/approve`, { token: admin });
      const done = await until(status, (r) => r.body.status === 'completed', 'completion');
      return { id: created.body.id as string, reviewed: reviewed.body, done: done.body };
    };
    const exported = await run({ type: 'export', regulation: 'GDPR', subject });
    expect(exported.reviewed.discovery.counts).toMatchObject({ termsAcceptance: 1 });
    const link = await host.call('GET', `/api/tenants/${tenantId}/dsr/${exported.id}/export`, {
      token: admin,
    });
    const zip = await readZip(Buffer.from(await (await fetch(link.body.url)).arrayBuffer()));
    const packaged = JSON.parse(zip.get('termsAcceptance.json')!.toString('utf8'));
    expect(packaged).toHaveLength(1);
    expect(packaged[0].data).toMatchObject({ version: 4, language: 'en' });

    const rectified = await run({
      type: 'rectify',
      regulation: 'GDPR',
      subject,
      rectifications: [{ category: 'termsAcceptance', field: 'version', value: 1 }],
    });
    expect(rectified.done.result.rectifications[0].outcome).toBe('SystemGeneratedLog');
    expect((await mine()).body.value[0].version).toBe(4);

    const erased = await run({ type: 'delete', regulation: 'GDPR', subject });
    expect(erased.done.result.erased).toMatchObject({ termsAcceptance: 1 });
    expect((await mine()).status).toBe(404);
    expect((await host.call('GET', api('/acceptances'), { token: admin })).body.value).toEqual([]);
  }, 90_000);
});
