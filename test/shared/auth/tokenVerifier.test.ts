import { randomUUID } from 'node:crypto';

import { base64url, SignJWT } from 'jose';

import { createTokenVerifier, type TokenVerifier } from '../../../shared/auth/tokenVerifier';
import { DEV_AUDIENCE, DEV_ISSUER_TEMPLATE } from '../../../local/devTokens';
import { createTestIssuer, type TestIssuer } from '../../support/tokens';

const tenantId = randomUUID();
let issuer: TestIssuer;
let verify: TokenVerifier;

beforeAll(async () => {
  issuer = await createTestIssuer();
  verify = createTokenVerifier({
    audience: DEV_AUDIENCE,
    issuerTemplate: DEV_ISSUER_TEMPLATE,
    jwks: { kind: 'file', path: issuer.jwksPath },
    clockSkewSeconds: 300,
  });
});

const expectUnauthenticated = async (authorization: string | undefined, message: RegExp) => {
  await expect(verify(authorization)).rejects.toMatchObject({
    code: 'Unauthenticated',
    message: expect.stringMatching(message),
    headers: { 'WWW-Authenticate': 'Bearer' },
  });
};

describe('token verification', () => {
  it('accepts a valid RS256 token and reads tid, oid, roles, upn, amr and acrs', async () => {
    const token = await issuer.token({
      tenantId: tenantId.toUpperCase(),
      objectId: 'oid-1',
      roles: ['Privacy.Admin'],
      upn: 'admin@contoso.com',
      amr: ['pwd', 'mfa'],
      acrs: ['c1'],
    });
    const principal = await verify(`Bearer ${token}`);
    expect(principal).toEqual({
      tenantId,
      objectId: 'oid-1',
      roles: new Set(['Privacy.Admin']),
      upn: 'admin@contoso.com',
      amr: ['pwd', 'mfa'],
      acrs: ['c1'],
    });
  });

  it('tolerates up to 5 minutes of clock skew', async () => {
    const token = await issuer.token({ tenantId, expiresInSeconds: -240 });
    await expect(verify(`Bearer ${token}`)).resolves.toMatchObject({ tenantId });
  });

  it('rejects a token expired beyond the skew', async () => {
    await expectUnauthenticated(
      `Bearer ${await issuer.token({ tenantId, expiresInSeconds: -360 })}`,
      /expired/,
    );
  });

  it('rejects a token not valid yet beyond the skew', async () => {
    await expectUnauthenticated(`Bearer ${await issuer.token({ tenantId, notBeforeSeconds: 600 })}`, /nbf/);
  });

  it('rejects a wrong audience', async () => {
    await expectUnauthenticated(`Bearer ${await issuer.token({ tenantId, audience: 'api://other' })}`, /aud/);
  });

  it("rejects an issuer that is not the token tenant's", async () => {
    const otherTenantIssuer = `https://login.microsoftonline.com/${randomUUID()}/v2.0`;
    await expectUnauthenticated(
      `Bearer ${await issuer.token({ tenantId, issuer: otherTenantIssuer })}`,
      /issuer/,
    );
  });

  it('rejects an unknown kid', async () => {
    await expectUnauthenticated(
      `Bearer ${await issuer.token({ tenantId, kid: 'unknown-kid' })}`,
      /key is unknown/,
    );
  });

  it('rejects a token signed by another key with the same kid', async () => {
    const stranger = await createTestIssuer();
    await expectUnauthenticated(
      `Bearer ${await stranger.token({ tenantId, kid: issuer.key.kid })}`,
      /not valid/,
    );
  });

  it('rejects alg none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT', kid: issuer.key.kid }));
    const now = Math.floor(Date.now() / 1000);
    const payload = base64url.encode(
      JSON.stringify({
        tid: tenantId,
        oid: 'x',
        aud: DEV_AUDIENCE,
        iss: DEV_ISSUER_TEMPLATE.replace('{tenantid}', tenantId),
        exp: now + 600,
      }),
    );
    await expectUnauthenticated(`Bearer ${header}.${payload}.`, /not valid|not allowed/);
  });

  it('rejects HS256, even when keyed with the public key material', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(issuer.key.jwks.keys[0]));
    const token = await new SignJWT({ tid: tenantId, oid: 'x' })
      .setProtectedHeader({ alg: 'HS256', kid: issuer.key.kid })
      .setIssuer(DEV_ISSUER_TEMPLATE.replace('{tenantid}', tenantId))
      .setAudience(DEV_AUDIENCE)
      .setExpirationTime('10m')
      .sign(secret);
    await expectUnauthenticated(`Bearer ${token}`, /not allowed|not valid/);
  });

  it('rejects a missing, non-bearer or malformed authorization header', async () => {
    await expectUnauthenticated(undefined, /bearer token is required/);
    await expectUnauthenticated('Basic dXNlcjpwYXNz', /bearer token is required/);
    await expectUnauthenticated('Bearer not-a-jwt', /not valid/);
  });

  it('rejects a token without a tenant id', async () => {
    await expectUnauthenticated(`Bearer ${await issuer.token({ tenantId: 'not-a-guid' })}`, /issuer|tid/);
  });
});
