import { randomBytes } from 'node:crypto';

import { open, seal, SealedBoxError } from '../../../shared/crypto/sealedBox';

const key = randomBytes(32);
const aad = 'c0ffee00-0000-4000-8000-000000000001|subject-1|record-1';

/** Flips one bit of one part's bytes and re-encodes it canonically, so only the content changes. */
function tamper(sealed: string, part: 1 | 2 | 3): string {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  bytes[0] = bytes[0]! ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe('sealedBox', () => {
  it('opens what it sealed, from a string or bytes, and never repeats a ciphertext', () => {
    const sealed = seal(key, 'Adele Vance, adele@contoso.com', aad);
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    expect(open(key, sealed, aad).toString('utf8')).toBe('Adele Vance, adele@contoso.com');

    const bytes = randomBytes(1000);
    expect(open(key, seal(key, bytes, aad), aad)).toEqual(bytes);
    expect(open(key, seal(key, '', aad), aad)).toEqual(Buffer.alloc(0));
    expect(seal(key, 'same', aad)).not.toBe(seal(key, 'same', aad));
  });

  it.each([
    [1, 'IV'],
    [2, 'tag'],
    [3, 'ciphertext'],
  ] as const)('refuses a box whose part %s (%s) was altered', (part, _name) => {
    const sealed = seal(key, 'some personal data', aad);
    expect(() => open(key, tamper(sealed, part), aad)).toThrow(SealedBoxError);
  });

  it('refuses a box under another aad, so a value copied to another place does not open', () => {
    const sealed = seal(key, 'some personal data', aad);
    expect(() => open(key, sealed, `${aad}x`)).toThrow(/altered, or the key or the aad differ/);
    expect(() => open(key, sealed, '')).toThrow(SealedBoxError);
  });

  it('refuses a box under another key', () => {
    const sealed = seal(key, 'some personal data', aad);
    expect(() => open(randomBytes(32), sealed, aad)).toThrow(SealedBoxError);
  });

  it('refuses unknown versions, malformed boxes and non-canonical encodings', () => {
    const [, iv, tag, ciphertext] = seal(key, 'data', aad).split('.');
    expect(() => open(key, `v2.${iv}.${tag}.${ciphertext}`, aad)).toThrow(/Unknown sealed box version "v2"/);
    expect(() => open(key, 'not a sealed box', aad)).toThrow(/Unknown sealed box version/);
    expect(() => open(key, `v1.${iv}.${tag}`, aad)).toThrow(/3 parts, not 4/);
    expect(() => open(key, `v1.${iv}.${tag}.${ciphertext}=`, aad)).toThrow(/canonical base64url/);
    // Characters the decoder would skip, and the standard alphabet's letters, anywhere in a part.
    const mid = Math.floor(ciphertext!.length / 2);
    for (const stray of ['!', ' ', '=', '.', '+', '/', '\n']) {
      const altered = `${ciphertext!.slice(0, mid)}${stray}${ciphertext!.slice(mid)}`;
      expect(() => open(key, `v1.${iv}.${tag}.${altered}`, aad)).toThrow(SealedBoxError);
    }
    for (const letter of ['+', '/']) {
      const respelled = `${letter}${ciphertext!.slice(1)}`;
      expect(() => open(key, `v1.${iv}.${tag}.${respelled}`, aad)).toThrow(/canonical base64url/);
      expect(() => open(key, `v1.${letter}${iv!.slice(1)}.${tag}.${ciphertext}`, aad)).toThrow(
        /canonical base64url/,
      );
    }
    const shortTag = Buffer.from(tag!, 'base64url').subarray(1).toString('base64url');
    expect(() => open(key, `v1.${iv}.${shortTag}.${ciphertext}`, aad)).toThrow(/wrong IV or tag length/);
  });

  it('accepts only 32-byte keys', () => {
    expect(() => seal(randomBytes(16), 'data', aad)).toThrow(/32 bytes, not 16/);
  });
});
