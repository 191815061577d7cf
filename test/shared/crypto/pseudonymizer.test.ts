import { randomBytes } from 'node:crypto';

import { hmacWith, PSEUDONYM_KEY_ROW, Pseudonymizer } from '../../../shared/crypto/pseudonymizer';
import { TABLES } from '../../../shared/storage/names';
import { testStorage, testTenantScope } from '../../support/testStorage';

const pseudonymizer = (): Pseudonymizer => new Pseudonymizer();

describe('Pseudonymizer', () => {
  it('gives the same pseudonym for the same tenant and value, whatever the case and surrounding spaces', async () => {
    const tenant = testTenantScope();

    const first = await pseudonymizer().hmac(tenant, 'upn', 'Adele.Vance@Contoso.com');
    const again = await pseudonymizer().hmac(tenant, 'upn', '  adele.vance@CONTOSO.com\n');

    expect(first).toMatch(/^[0-9a-f]{32}$/);
    expect(again).toBe(first);
    expect(await pseudonymizer().hmac(tenant, 'upn', 'adele.vance@contoso.co')).not.toBe(first);
  });

  it('gives different pseudonyms in different tenants and for different kinds', async () => {
    const storage = testStorage();
    const [tenantA, tenantB] = [testTenantScope(storage), testTenantScope(storage)];
    const p = pseudonymizer();

    const upnA = await p.hmac(tenantA, 'upn', 'adele@contoso.com');
    expect(await p.hmac(tenantB, 'upn', 'adele@contoso.com')).not.toBe(upnA);
    expect(await p.hmac(tenantA, 'email', 'adele@contoso.com')).not.toBe(upnA);
  });

  it('creates one key per tenant even when instances race, and stores it wrapped, never usable as stored', async () => {
    const tenant = testTenantScope();

    const keys = await Promise.all(Array.from({ length: 10 }, () => pseudonymizer().keyFor(tenant)));

    expect(new Set(keys.map((k) => k.toString('hex'))).size).toBe(1);
    const key = keys[0]!;
    const table = await tenant.account.table(TABLES.tenantSecrets);
    const row = await table.getEntity<{ value: string }>(tenant.tenantId, PSEUDONYM_KEY_ROW);
    const text = JSON.stringify(row);
    for (const encoding of ['hex', 'base64', 'base64url'] as const) {
      expect(text).not.toContain(key.toString(encoding).replace(/=+$/, ''));
    }
    const pseudonym = hmacWith(key, 'upn', 'adele@contoso.com');
    for (const part of row.value.split('.')) {
      const bytes = Buffer.from(part, 'base64url');
      if (bytes.length === 32) expect(hmacWith(bytes, 'upn', 'adele@contoso.com')).not.toBe(pseudonym);
    }
    expect(await pseudonymizer().hmac(tenant, 'upn', 'adele@contoso.com')).toBe(pseudonym);
  });

  it('hmacWith is a pure function of key, kind and normalised value, and refuses kinds that could collide', () => {
    const key = randomBytes(32);
    expect(hmacWith(key, 'objectId', ' ABC ')).toBe(hmacWith(key, 'objectId', 'abc'));
    expect(hmacWith(randomBytes(32), 'objectId', 'abc')).not.toBe(hmacWith(key, 'objectId', 'abc'));
    expect(() => hmacWith(key, 'upn:x', 'abc')).toThrow(/not an identifier kind/);
    expect(() => hmacWith(randomBytes(16), 'upn', 'abc')).toThrow(/32 bytes/);
  });
});
