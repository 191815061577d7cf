import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createSigningKey, DEV_AUDIENCE, DEV_ISSUER_TEMPLATE, mintToken } from '../../local/devTokens';
import { parseTokenArguments, UsageError } from '../../local/tokenCli';
import { createTokenVerifier } from '../../shared/auth/tokenVerifier';

const TENANT = 'c0ffee00-0000-4000-8000-000000000001';

describe('parseTokenArguments', () => {
  it('reads tenant, roles, upn, amr and lifetime from the command line', () => {
    expect(
      parseTokenArguments([
        '--tenant',
        TENANT.toUpperCase(),
        '--roles',
        'Privacy.Admin, Privacy.Reader',
        '--upn',
        'adele@contoso.com',
        '--amr',
        'mfa,pwd',
        '--expires',
        '600',
      ]),
    ).toEqual({
      tenantId: TENANT,
      roles: ['Privacy.Admin', 'Privacy.Reader'],
      objectId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/),
      upn: 'adele@contoso.com',
      amr: ['mfa', 'pwd'],
      expiresInSeconds: 600,
    });
  });

  it('gives the same caller the same object id in every token unless --oid says otherwise', () => {
    const oid = (...extra: string[]) => parseTokenArguments(['--tenant', TENANT, ...extra])?.objectId;
    expect(oid('--upn', 'adele@contoso.com')).toBe(oid('--upn', 'adele@contoso.com'));
    expect(oid('--upn', 'adele@contoso.com')).not.toBe(oid('--upn', 'alex@contoso.com'));
    expect(oid('--oid', 'caller-1')).toBe('caller-1');
  });

  it('accepts a negative lifetime written as --expires=-60, for expired tokens', () => {
    expect(parseTokenArguments(['--tenant', TENANT, '--expires=-60'])?.expiresInSeconds).toBe(-60);
  });

  it.each([
    [[]],
    [['--tenant', 'contoso.onmicrosoft.com']],
    [['--tenant', TENANT, '--expires', 'soon']],
    [['--tenant', TENANT, '--role', 'Privacy.Admin']],
    [['--tenant', TENANT, 'extra']],
  ])('refuses %j with a usage error', (args) => {
    expect(() => parseTokenArguments(args)).toThrow(UsageError);
  });

  it('returns nothing when help is asked for', () => {
    expect(parseTokenArguments(['--help'])).toBeUndefined();
  });
});

describe('a token from the command line', () => {
  it('is accepted by the token verifier configured with the development JWKS', async () => {
    const key = await createSigningKey();
    const jwksPath = join(mkdtempSync(join(tmpdir(), 'dev-jwks-')), 'dev-jwks.json');
    writeFileSync(jwksPath, JSON.stringify(key.jwks));
    const verify = createTokenVerifier({
      audience: DEV_AUDIENCE,
      issuerTemplate: DEV_ISSUER_TEMPLATE,
      jwks: { kind: 'file', path: jwksPath },
      clockSkewSeconds: 300,
    });
    const claims = parseTokenArguments([
      '--tenant',
      TENANT,
      '--roles',
      'Privacy.Admin',
      '--upn',
      'adele@contoso.com',
      '--amr',
      'mfa',
      '--acrs',
      'c1',
    ])!;

    const principal = await verify(`Bearer ${await mintToken(key, claims)}`);

    expect(principal).toEqual({
      tenantId: TENANT,
      objectId: claims.objectId,
      roles: new Set(['Privacy.Admin']),
      upn: 'adele@contoso.com',
      amr: ['mfa'],
      acrs: ['c1'],
    });
  });
});
