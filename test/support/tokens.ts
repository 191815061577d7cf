// Tokens for tests: a key pair made per test run, its JWKS in a temp file, and the minting of tokens.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createSigningKey, type DevSigningKey, mintToken, type TokenClaims } from '../../local/devTokens';

export interface TestIssuer {
  key: DevSigningKey;
  jwksPath: string;
  token(claims: TokenClaims): Promise<string>;
}

export async function createTestIssuer(): Promise<TestIssuer> {
  const key = await createSigningKey();
  const jwksPath = join(mkdtempSync(join(tmpdir(), 'privacy-jwks-')), 'jwks.json');
  writeFileSync(jwksPath, JSON.stringify(key.jwks));
  return { key, jwksPath, token: (claims) => mintToken(key, claims) };
}
