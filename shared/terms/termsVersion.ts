// Terms and privacy statement (SPEC §10): what a tenant publishes, per language, as numbered versions bound
// to their text's SHA-256; what a user's acceptance binds to; and whether an acceptance still stands. Pure.
import { createHash } from 'node:crypto';

import { z } from 'zod';

/** A BCP 47 language tag as portals send it: `en`, `de-CH`, `zh-Hant-TW`. */
export const languageSchema = z
  .string()
  .regex(/^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}$/, 'a BCP 47 language tag such as en or de-CH')
  .transform((tag) => canonicalLanguage(tag));

export const publishTermsSchema = z
  .strictObject({
    language: languageSchema,
    title: z.string().trim().min(1).max(256),
    summary: z.string().trim().min(1).max(2000).optional(),
    /** The text users see and accept, byte for byte (its SHA-256 is what an acceptance binds to). */
    text: z.string().min(1).max(60_000),
    /** Users who accepted an earlier version must accept this one again (otherwise theirs still stands). */
    requireReacceptance: z.boolean().optional(),
  })
  .meta({ id: 'PublishTerms' });
export type PublishTermsInput = z.infer<typeof publishTermsSchema>;

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a hex SHA-256');

export const acceptTermsSchema = z
  .strictObject({
    version: z.number().int().min(1),
    sha256: sha256Schema.describe('The SHA-256 of the text shown, as GET .../terms answered it.'),
    deviceName: z.string().trim().min(1).max(256).optional(),
  })
  .meta({ id: 'AcceptTerms' });
export type AcceptTermsInput = z.infer<typeof acceptTermsSchema>;

export interface TermsVersion {
  /** Numbered across the tenant's languages: version N names one language and one text. */
  version: number;
  language: string;
  title: string;
  summary?: string;
  text: string;
  /** Hex SHA-256 of `text` as UTF-8. */
  sha256: string;
  requireReacceptance: boolean;
  publishedAt: string;
  publishedBy: string;
  /** The tenant's default language when this version was published (the first language it published). */
  defaultLanguage: string;
}

/** Language tags compare case-insensitively; kept as BCP 47 writes them (`de-CH`, `zh-Hant`). */
export function canonicalLanguage(tag: string): string {
  return tag
    .split('-')
    .map((part, i) => {
      if (i === 0) return part.toLowerCase();
      if (part.length === 2) return part.toUpperCase();
      if (part.length === 4) return part[0]!.toUpperCase() + part.slice(1).toLowerCase();
      return part.toLowerCase();
    })
    .join('-');
}

export const textHash = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** The version a publication makes, after `latest` (the tenant's newest version of any language). */
export function nextVersion(
  input: PublishTermsInput,
  latest: Pick<TermsVersion, 'version' | 'defaultLanguage'> | undefined,
  publishedBy: string,
  now: Date,
): TermsVersion {
  return {
    version: (latest?.version ?? 0) + 1,
    language: input.language,
    title: input.title,
    ...(input.summary ? { summary: input.summary } : {}),
    text: input.text,
    sha256: textHash(input.text),
    requireReacceptance: input.requireReacceptance ?? false,
    publishedAt: now.toISOString(),
    publishedBy,
    defaultLanguage: latest?.defaultLanguage ?? input.language,
  };
}

/**
 * The version to show for `asked`: that language's newest, or else the default language's (the language
 * a tag falls back to first: `de-CH` asks for `de` before the default).
 */
export function versionToShow(
  currentByLanguage: ReadonlyMap<string, TermsVersion>,
  asked: string | undefined,
  defaultLanguage: string | undefined,
): TermsVersion | undefined {
  const candidates: string[] = [];
  if (asked) {
    const parts = asked.split('-');
    for (let n = parts.length; n >= 1; n--) candidates.push(parts.slice(0, n).join('-'));
  }
  if (defaultLanguage) candidates.push(defaultLanguage);
  for (const language of candidates) {
    const found = currentByLanguage.get(language);
    if (found) return found;
  }
  return undefined;
}

/** What a user's acceptance record holds (sealed like every record: category `termsAcceptance`). */
export interface Acceptance {
  version: number;
  language: string;
  sha256: string;
  acceptedAt: string;
  deviceName?: string;
  withdrawnAt?: string;
  /** Every acceptance and withdrawal of this user, oldest first (the last 50). */
  history: { action: 'accepted' | 'withdrawn'; version: number; sha256: string; at: string }[];
}

export const HISTORY_KEPT = 50;

/**
 * Whether an acceptance still stands for its language: not withdrawn, and no version of that language
 * published after the accepted one asks for acceptance again.
 */
export function acceptedLatest(
  acceptance: Pick<Acceptance, 'version' | 'language' | 'withdrawnAt'>,
  versions: readonly Pick<TermsVersion, 'version' | 'language' | 'requireReacceptance'>[],
): boolean {
  if (acceptance.withdrawnAt) return false;
  return !versions.some(
    (v) => v.language === acceptance.language && v.version > acceptance.version && v.requireReacceptance,
  );
}
