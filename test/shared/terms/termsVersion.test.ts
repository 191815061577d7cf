// The terms' pure rules: language tags, which version is shown, and whether an acceptance still stands.
import {
  acceptedLatest,
  canonicalLanguage,
  languageSchema,
  nextVersion,
  type TermsVersion,
  textHash,
  versionToShow,
} from '../../../shared/terms/termsVersion';

const now = new Date('2026-11-25T12:00:00Z');

describe('terms versions', () => {
  it('writes language tags as BCP 47 does and refuses what is not one', () => {
    expect(canonicalLanguage('DE-ch')).toBe('de-CH');
    expect(canonicalLanguage('zh-hant-tw')).toBe('zh-Hant-TW');
    expect(languageSchema.safeParse('en_US').success).toBe(false);
    expect(languageSchema.safeParse('e').success).toBe(false);
  });

  it('numbers versions across languages and keeps the first language as the default', () => {
    const first = nextVersion({ language: 'en', title: 'T', text: 'a' }, undefined, 'dpo', now);
    const second = nextVersion({ language: 'de', title: 'T', text: 'b' }, first, 'dpo', now);
    expect([first.version, second.version]).toEqual([1, 2]);
    expect(second.defaultLanguage).toBe('en');
    expect(second.sha256).toBe(textHash('b'));
    expect(textHash('b')).toBe('3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d');
  });

  it('shows the language asked, then its base language, then the default', () => {
    const version = (n: number, language: string) => ({ version: n, language }) as TermsVersion;
    const current = new Map([
      ['en', version(1, 'en')],
      ['de', version(2, 'de')],
      ['de-CH', version(3, 'de-CH')],
    ]);
    expect(versionToShow(current, 'de-CH', 'en')?.version).toBe(3);
    expect(versionToShow(current, 'de-AT', 'en')?.version).toBe(2);
    expect(versionToShow(current, 'fr', 'en')?.version).toBe(1);
    expect(versionToShow(current, undefined, 'en')?.version).toBe(1);
    expect(versionToShow(new Map(), 'fr', undefined)).toBeUndefined();
  });

  it('lets an acceptance stand until withdrawn or a later version of its language asks again', () => {
    const versions = [
      { version: 1, language: 'en', requireReacceptance: false },
      { version: 2, language: 'de', requireReacceptance: true },
      { version: 3, language: 'en', requireReacceptance: false },
    ];
    expect(acceptedLatest({ version: 1, language: 'en' }, versions)).toBe(true);
    expect(acceptedLatest({ version: 1, language: 'en', withdrawnAt: now.toISOString() }, versions)).toBe(
      false,
    );
    const asked = [...versions, { version: 4, language: 'en', requireReacceptance: true }];
    expect(acceptedLatest({ version: 3, language: 'en' }, asked)).toBe(false);
    expect(acceptedLatest({ version: 4, language: 'en' }, asked)).toBe(true);
    expect(acceptedLatest({ version: 2, language: 'de' }, asked)).toBe(true);
  });
});
