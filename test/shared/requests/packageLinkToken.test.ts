// Download link tokens: only an HS256 JWS of this type and purpose, signed with the tenant's derived key and
// not expired beyond 30 s, is accepted; everything else is refused alike.
import { randomBytes, randomUUID } from 'node:crypto';

import { generateKeyPair, SignJWT } from 'jose';

import { subjectRows } from '../../../shared/records/recordKeys';
import {
  claimedTenant,
  LINK_PURPOSE,
  LINK_TOKEN_TYPE,
  linkSigningKey,
  type PackageLinkClaims,
  signPackageLink,
  verifyPackageLink,
} from '../../../shared/requests/packageLinkToken';

const NOW = new Date(Date.UTC(2026, 0, 10, 12, 0, 0));
const pseudonymKey = randomBytes(32);
const key = linkSigningKey(pseudonymKey);
const requestId = '0abcdefgh0123456789abcdef';
const claims: PackageLinkClaims = {
  tenantId: randomUUID(),
  requestId,
  subjectKey: randomBytes(16).toString('hex'),
  packageRow: subjectRows.package(requestId, randomUUID()),
  linkId: randomUUID(),
  expiresAt: new Date(NOW.getTime() + 15 * 60 * 1000),
};

/** The claims as the token carries them, for tokens built by hand. */
const payload = (overrides: Record<string, unknown> = {}) => ({
  tid: claims.tenantId,
  rid: claims.requestId,
  sub: claims.subjectKey,
  pkg: claims.packageRow,
  jti: claims.linkId,
  exp: Math.floor(claims.expiresAt.getTime() / 1000),
  purpose: LINK_PURPOSE,
  ...overrides,
});

const sign = (
  body: Record<string, unknown>,
  header: { alg: string; typ?: string } = { alg: 'HS256', typ: LINK_TOKEN_TYPE },
) => new SignJWT(body).setProtectedHeader(header).sign(key);

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const at = (seconds: number) => new Date(claims.expiresAt.getTime() + seconds * 1000);

describe('package link tokens', () => {
  it('accept a link signed with the tenant key until 30 s after its expiry', async () => {
    const token = await signPackageLink(claims, key);
    expect(await verifyPackageLink(token, key, NOW)).toEqual(claims);
    expect(await verifyPackageLink(token, key, at(29))).toEqual(claims);
    expect(await verifyPackageLink(token, key, at(31))).toBeUndefined();
    expect(claimedTenant(token)).toBe(claims.tenantId);
  });

  it('derive the key from the pseudonymisation key: the same key gives the same, another another', () => {
    expect(Buffer.from(linkSigningKey(pseudonymKey)).equals(Buffer.from(key))).toBe(true);
    expect(Buffer.from(linkSigningKey(randomBytes(32))).equals(Buffer.from(key))).toBe(false);
    // Never the pseudonymisation key itself.
    expect(Buffer.from(key).equals(pseudonymKey)).toBe(false);
  });

  it('refuse another purpose, type, or a package of another request', async () => {
    expect(await verifyPackageLink(await sign(payload()), key, NOW)).toEqual(claims);
    expect(await verifyPackageLink(await sign(payload({ purpose: 'login' })), key, NOW)).toBeUndefined();
    expect(
      await verifyPackageLink(await sign(payload(), { alg: 'HS256', typ: 'JWT' }), key, NOW),
    ).toBeUndefined();
    expect(await verifyPackageLink(await sign(payload(), { alg: 'HS256' }), key, NOW)).toBeUndefined();
    const other = subjectRows.package('1abcdefgh0123456789abcdef', randomUUID());
    expect(await verifyPackageLink(await sign(payload({ pkg: other })), key, NOW)).toBeUndefined();
    const { jti: _jti, ...withoutId } = payload();
    expect(await verifyPackageLink(await sign(withoutId), key, NOW)).toBeUndefined();
  });

  it('refuse alg none, RS256, and HS384 or HS512 even under the right key', async () => {
    const none = `${b64url({ alg: 'none', typ: LINK_TOKEN_TYPE })}.${b64url(payload())}.`;
    expect(await verifyPackageLink(none, key, NOW)).toBeUndefined();
    const noneSigned = `${b64url({ alg: 'none', typ: LINK_TOKEN_TYPE })}.${b64url(payload())}.${'A'.repeat(43)}`;
    expect(await verifyPackageLink(noneSigned, key, NOW)).toBeUndefined();

    const { privateKey } = await generateKeyPair('RS256');
    const rs256 = await new SignJWT(payload())
      .setProtectedHeader({ alg: 'RS256', typ: LINK_TOKEN_TYPE })
      .sign(privateKey);
    expect(await verifyPackageLink(rs256, key, NOW)).toBeUndefined();

    // Signed with the very key: only the algorithm is wrong.
    for (const alg of ['HS384', 'HS512']) {
      const token = await sign(payload(), { alg, typ: LINK_TOKEN_TYPE });
      expect(await verifyPackageLink(token, key, NOW)).toBeUndefined();
    }
  });

  it("refuse another tenant's key and any changed byte", async () => {
    const token = await signPackageLink(claims, key);
    expect(await verifyPackageLink(token, linkSigningKey(randomBytes(32)), NOW)).toBeUndefined();

    const [header, body, signature] = token.split('.') as [string, string, string];
    const otherSubject = b64url(payload({ sub: randomBytes(16).toString('hex') }));
    expect(await verifyPackageLink(`${header}.${otherSubject}.${signature}`, key, NOW)).toBeUndefined();
    const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    expect(await verifyPackageLink(`${header}.${body}.${flipped}`, key, NOW)).toBeUndefined();
  });

  it('read the claimed tenant only from a JWS whose tid is a UUID', async () => {
    expect(claimedTenant('not-a-token')).toBeUndefined();
    expect(claimedTenant(await sign(payload({ tid: 'contoso' })))).toBeUndefined();
    expect(claimedTenant(`${b64url({ alg: 'HS256' })}.${b64url(['x'])}.sig`)).toBeUndefined();
  });
});
