// What the service discloses about a category of personal data (GDPR Art. 15(1), Art. 30(2), SPEC §5 and
// §10): its name, what it holds, its source, purpose, recipients, how long it is kept and where it is
// stored; and the data subject's rights. One place, read by the processing register and the access report,
// so the two can never say different things. Every part comes from a table the service enforces: the words
// (vocabulary/categoryWords.ts), the retention (retention/categoryRetention.ts, the purge's own rules) and the
// tenant's geography (residency/geography.ts). Pure.
import { GEOGRAPHY_SERVES } from '../residency/geography';
import { periodWords, retentionOf } from '../retention/categoryRetention';
import { RETENTION_POLICY, type RetentionRule, type RetentionRuleName } from '../retention/retentionPolicy';
import type { RecordCategory } from '../vocabulary/categories';
import { CATEGORY_WORDS, type CategoryWords } from '../vocabulary/categoryWords';
import type { Geography } from '../vocabulary/geographies';

export interface CategoryDisclosure extends CategoryWords {
  category: RecordCategory;
  retention: { words: string; rules: DisclosedRule[] };
  storedIn: { geography: Geography; serves: string; how: string };
}

/** A retention rule as disclosed: its period in words and as numbers, and what it counts from. */
export interface DisclosedRule {
  rule: RetentionRuleName;
  action: RetentionRule['action'];
  /** In words: `30 days`, `2 years`. */
  after: string;
  period: RetentionRule['after'];
  from: RetentionRule['from'];
}

export function disclosedRule(rule: RetentionRuleName): DisclosedRule {
  const r: RetentionRule = RETENTION_POLICY[rule];
  return { rule, action: r.action, after: periodWords(r.after), period: r.after, from: r.from };
}

const HOW_STORED =
  "Azure Table and Blob Storage of the geography's own storage account, encrypted per data subject " +
  "(AES-256-GCM); keys wrapped by a tenant key in the geography's own key store";

export function discloseCategory(category: RecordCategory, geography: Geography): CategoryDisclosure {
  const retention = retentionOf(category);
  return {
    category,
    ...CATEGORY_WORDS[category],
    retention: {
      words: retention.words,
      rules: retention.rules.map(({ rule }) => disclosedRule(rule)),
    },
    storedIn: { geography, serves: GEOGRAPHY_SERVES[geography], how: HOW_STORED },
  };
}

export interface SubjectRight {
  right: string;
  /** The GDPR article, and the CCPA section where there is one. */
  law: string;
  what: string;
  how: string;
}

const ASK = 'Ask your organisation (the controller, for example its privacy officer or IT department)';

/** The data subject's rights and how to exercise them, in words (GDPR Art. 15(1)(e)-(f), CCPA). */
export const SUBJECT_RIGHTS: readonly SubjectRight[] = [
  {
    right: 'Access',
    law: 'GDPR Art. 15; CCPA § 1798.110',
    what: 'To know what personal data is held about you, why, where it comes from and who receives it.',
    how: `${ASK}; it takes in an access request, and this report is the answer to one.`,
  },
  {
    right: 'Rectification',
    law: 'GDPR Art. 16; CCPA § 1798.106',
    what: 'To have inaccurate data corrected.',
    how:
      `${ASK} for a rectification request. Data that your devices report is corrected on the device and ` +
      'synchronised at its next check-in; system logs record what happened and are not changed.',
  },
  {
    right: 'Erasure',
    law: 'GDPR Art. 17; CCPA § 1798.105',
    what: 'To have your personal data deleted.',
    how: `${ASK} for a deletion request; every record of yours and its key are destroyed.`,
  },
  {
    right: 'Restriction of processing',
    law: 'GDPR Art. 18',
    what: 'To have your data only stored, not otherwise used, while a dispute is settled.',
    how: `${ASK} for a restriction; it is lifted the same way.`,
  },
  {
    right: 'Objection',
    law: 'GDPR Art. 21',
    what: 'To object to processing based on legitimate interests.',
    how: ASK,
  },
  {
    right: 'Data portability',
    law: 'GDPR Art. 20; CCPA § 1798.100',
    what: 'To receive your data in a structured, machine-readable form.',
    how: `${ASK} for an export request: the package holds one JSON file per category.`,
  },
  {
    right: 'Complaint to a supervisory authority',
    law: 'GDPR Art. 77',
    what: 'To lodge a complaint with the data protection authority where you live or work.',
    how: 'Contact your national data protection authority (in California, the California Privacy Protection Agency).',
  },
];

/** That nothing is used beyond the purposes above. */
export const NO_PROFILING = 'No personal data is used for profiling, advertising or marketing.';
