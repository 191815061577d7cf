// Terms and privacy statement (SPEC §10): publication of versions, acceptance of exactly the text shown,
// withdrawal, and the admins' listing. Acceptances are personal data like any record (category
// `termsAcceptance`, one record per user and language, sealed with the user's data key), so requests
// discover, export and erase them; each acceptance and withdrawal is also an event in the tenant's chain.
import { randomUUID } from 'node:crypto';

import type { Actor, AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { DomainError, notFound } from '../errors';
import type { Page, PageRequest } from '../paging';
import type { RecordBrowser } from '../records/recordBrowser';
import type { RecordStore } from '../records/recordStore';
import type { RestrictionStore } from '../records/restrictions';
import type { TenantScope } from '../residency/tenantDirectory';
import type { TermsStore } from './termsStore';
import {
  type AcceptTermsInput,
  type Acceptance,
  acceptedLatest,
  HISTORY_KEPT,
  nextVersion,
  type PublishTermsInput,
  type TermsVersion,
  versionToShow,
} from './termsVersion';

const CATEGORY = 'termsAcceptance' as const;
const PUBLISH_ATTEMPTS = 5;

export interface TermsUser {
  objectId: string;
  upn?: string | undefined;
}

export type VersionSummary = Omit<TermsVersion, 'text'>;

export interface AcceptanceView extends Omit<Acceptance, 'history'> {
  objectId: string;
  upn?: string | undefined;
  /** Still stands: not withdrawn, and no later version of its language asked for acceptance again. */
  acceptedLatest: boolean;
  /** The version now shown in that language. */
  currentVersion?: number | undefined;
  history: Acceptance['history'];
}

/** An acceptance as read, with the time its record carries. */
type StoredAcceptance = Acceptance & { storedAt: string };

interface Published {
  versions: TermsVersion[];
  current: Map<string, TermsVersion>;
  defaultLanguage?: string | undefined;
}

const recordIdOf = (language: string) => `terms:${language}`;

export class TermsService {
  constructor(
    private readonly store: TermsStore,
    private readonly records: RecordStore,
    private readonly browser: RecordBrowser,
    private readonly restrictions: RestrictionStore,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /** Publishes the next version: its number, its text's SHA-256, its time; audited. */
  async publish(
    tenant: TenantScope,
    input: PublishTermsInput,
    actor: Actor,
    correlationId: string,
  ): Promise<TermsVersion> {
    for (let attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
      const version = nextVersion(
        input,
        await this.store.latest(tenant),
        actor.upn ?? actor.id,
        this.clock(),
      );
      if (!(await this.store.create(tenant, version))) continue; // the number was taken meanwhile
      try {
        await this.audit.append(tenant, {
          id: randomUUID(),
          action: 'terms.published',
          actor,
          target: { type: 'termsVersion', id: String(version.version) },
          outcome: 'success',
          correlationId,
          details: {
            version: version.version,
            language: version.language,
            sha256: version.sha256,
            requireReacceptance: version.requireReacceptance,
          },
        });
      } catch (error) {
        // Not in the log, so not published: nobody may be asked to accept a version the log does not know.
        await this.store.remove(tenant, version.version).catch(() => undefined);
        throw error;
      }
      return version;
    }
    throw new DomainError('Conflict', 'Terms are being published concurrently; retry.');
  }

  /** The version shown for a language (the default language's where that one has none). */
  async current(tenant: TenantScope, language: string | undefined): Promise<TermsVersion> {
    const published = await this.published(tenant);
    const shown = versionToShow(published.current, language, published.defaultLanguage);
    if (!shown) throw notFound('Terms of this tenant');
    return shown;
  }

  async versions(tenant: TenantScope): Promise<VersionSummary[]> {
    return (await this.published(tenant)).versions.map(({ text: _text, ...summary }) => summary);
  }

  /** Records the user's acceptance of exactly the current text of a language; a stale one is refused. */
  async accept(
    tenant: TenantScope,
    user: TermsUser,
    input: AcceptTermsInput,
    correlationId: string,
  ): Promise<AcceptanceView> {
    const published = await this.published(tenant);
    const version = published.versions.find((v) => v.version === input.version);
    if (!version)
      throw new DomainError('InvalidState', `Version ${input.version} of the terms was never published.`);
    const current = published.current.get(version.language)!;
    if (current.version !== version.version) {
      throw new DomainError(
        'InvalidState',
        `Version ${version.version} is not the current text in ${version.language}: version ${current.version} is.`,
        [{ target: 'version', message: `the current version is ${current.version}` }],
      );
    }
    if (input.sha256 !== version.sha256) {
      throw new DomainError('InvalidState', 'The SHA-256 is not that of the text of this version.', [
        { target: 'sha256', message: 'not the hash of the version shown' },
      ]);
    }
    const now = this.clock().toISOString();
    const earlier = await this.find(tenant, user, version.language);
    const acceptance: Acceptance = {
      version: version.version,
      language: version.language,
      sha256: version.sha256,
      acceptedAt: now,
      ...(input.deviceName ? { deviceName: input.deviceName } : {}),
      history: [
        ...(earlier?.history ?? []),
        { action: 'accepted' as const, version: version.version, sha256: version.sha256, at: now },
      ].slice(-HISTORY_KEPT),
    };
    await this.save(tenant, user, acceptance, earlier);
    await this.record(tenant, user, 'terms.accepted', acceptance, correlationId);
    return this.view(user, acceptance, published);
  }

  /** The user's acceptances, one per language they accepted in. */
  async mine(tenant: TenantScope, user: TermsUser): Promise<AcceptanceView[]> {
    const published = await this.published(tenant);
    const found = await this.acceptances(tenant, user);
    if (found.length === 0) throw notFound('An acceptance of the terms by you');
    return found.map(({ storedAt: _storedAt, ...acceptance }) => this.view(user, acceptance, published));
  }

  /** Withdraws every standing acceptance of the user; the withdrawal is recorded and audited. */
  async withdraw(tenant: TenantScope, user: TermsUser, correlationId: string): Promise<AcceptanceView[]> {
    const published = await this.published(tenant);
    const standing = (await this.acceptances(tenant, user)).filter((a) => !a.withdrawnAt);
    if (standing.length === 0) throw notFound('A standing acceptance of the terms by you');
    const now = this.clock().toISOString();
    const withdrawn: Acceptance[] = [];
    for (const acceptance of standing) {
      const { storedAt: _storedAt, ...held } = acceptance;
      const changed: Acceptance = {
        ...held,
        withdrawnAt: now,
        history: [
          ...acceptance.history,
          { action: 'withdrawn' as const, version: acceptance.version, sha256: acceptance.sha256, at: now },
        ].slice(-HISTORY_KEPT),
      };
      await this.save(tenant, user, changed, acceptance);
      await this.record(tenant, user, 'terms.withdrawn', changed, correlationId);
      withdrawn.push(changed);
    }
    return withdrawn.map((acceptance) => this.view(user, acceptance, published));
  }

  /** Every user's acceptance (restricted subjects left out), for the tenant's admins. */
  async list(tenant: TenantScope, page: PageRequest): Promise<Page<AcceptanceView>> {
    const published = await this.published(tenant);
    const exclude = await this.restrictions.restrictedSubjects(tenant);
    const found = await this.browser.page(tenant, { categories: [CATEGORY], exclude }, page);
    return {
      ...found,
      items: found.items
        .filter((record) => !record.deletedAt)
        .map((record) => {
          const subject = record.subject as TermsUser;
          return this.view(
            { objectId: subject.objectId ?? '', upn: subject.upn },
            record.data as unknown as Acceptance,
            published,
          );
        }),
    };
  }

  private view(user: TermsUser, acceptance: Acceptance, published: Published): AcceptanceView {
    return {
      objectId: user.objectId,
      ...(user.upn ? { upn: user.upn } : {}),
      ...acceptance,
      acceptedLatest: acceptedLatest(acceptance, published.versions),
      currentVersion: published.current.get(acceptance.language)?.version,
    };
  }

  private async published(tenant: TenantScope): Promise<Published> {
    const versions: TermsVersion[] = [];
    for await (const version of this.store.all(tenant)) versions.push(version);
    const current = new Map<string, TermsVersion>();
    for (const version of versions)
      if (!current.has(version.language)) current.set(version.language, version);
    return { versions, current, defaultLanguage: versions[0]?.defaultLanguage };
  }

  private async acceptances(tenant: TenantScope, user: TermsUser): Promise<StoredAcceptance[]> {
    const { subjectKey } = await this.records.subjectOf(tenant, { objectId: user.objectId });
    const found: StoredAcceptance[] = [];
    for await (const record of this.records.list(tenant, subjectKey, CATEGORY)) {
      if (!record.deletedAt && record.recordId.startsWith('terms:')) {
        found.push({ ...(record.data as unknown as Acceptance), storedAt: record.occurredAt });
      }
    }
    return found;
  }

  private async find(
    tenant: TenantScope,
    user: TermsUser,
    language: string,
  ): Promise<StoredAcceptance | undefined> {
    return (await this.acceptances(tenant, user)).find((a) => a.language === language);
  }

  /**
   * Writes the user's record for the language. Records are newer-wins by their time: the change is dated
   * after the version it replaces, even by a clock that runs behind, so it is never taken for a stale one.
   */
  private async save(
    tenant: TenantScope,
    user: TermsUser,
    acceptance: Acceptance,
    previous: StoredAcceptance | undefined,
  ): Promise<void> {
    const now = this.clock().getTime();
    const after = previous ? Date.parse(previous.storedAt) + 1 : 0;
    const { storedAt: _storedAt, ...data } = acceptance as StoredAcceptance;
    await this.records.upsert(tenant, {
      category: CATEGORY,
      recordId: recordIdOf(acceptance.language),
      subject: { objectId: user.objectId, ...(user.upn ? { upn: user.upn } : {}) },
      occurredAt: new Date(Math.max(now, after)).toISOString(),
      data: { ...data },
    });
  }

  private async record(
    tenant: TenantScope,
    user: TermsUser,
    action: 'terms.accepted' | 'terms.withdrawn',
    acceptance: Acceptance,
    correlationId: string,
  ): Promise<void> {
    await this.audit.append(tenant, {
      id: randomUUID(),
      action,
      actor: { type: 'user', id: user.objectId, ...(user.upn ? { upn: user.upn } : {}) },
      target: { type: 'termsVersion', id: String(acceptance.version) },
      outcome: 'success',
      correlationId,
      details: {
        version: acceptance.version,
        language: acceptance.language,
        sha256: acceptance.sha256,
      },
    });
  }
}
