// Published terms versions in Table storage (tenant's geography, table `terms`): PartitionKey the tenant id,
// RowKey `v_<inverted version>` so the newest comes first. A version is never changed once published; the
// next number is taken by creating its row (a concurrent publication of the same number gets 409 and tries
// the next). The text is split over properties of 30,000 characters (a Table string holds 64 KiB).
import { odata, type TableClient } from '@azure/data-tables';

import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import type { TermsVersion } from './termsVersion';

const MAX_VERSION = 999_999;
const TEXT_CHUNK = 30_000;

export const versionRow = (version: number): string => `v_${String(MAX_VERSION - version).padStart(6, '0')}`;

type VersionEntity = Omit<TermsVersion, 'text' | 'summary'> & {
  partitionKey: string;
  rowKey: string;
  summary?: string;
  textChunks: number;
} & Record<`text${number}`, string>;

export class TermsStore {
  /** Creates the version's row; false if that number was taken meanwhile. */
  async create(tenant: TenantScope, version: TermsVersion): Promise<boolean> {
    const table = await this.table(tenant);
    const { text, ...rest } = version;
    const entity: Record<string, unknown> = {
      ...rest,
      partitionKey: tenant.tenantId,
      rowKey: versionRow(version.version),
      textChunks: Math.ceil(text.length / TEXT_CHUNK),
    };
    for (let i = 0; i * TEXT_CHUNK < text.length; i++) {
      entity[`text${i}`] = text.slice(i * TEXT_CHUNK, (i + 1) * TEXT_CHUNK);
    }
    try {
      await table.createEntity(entity as VersionEntity);
      return true;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 409) return false;
      throw error;
    }
  }

  /** Removes a version that could not be audited (it was never announced). */
  async remove(tenant: TenantScope, version: number): Promise<void> {
    const table = await this.table(tenant);
    await table.deleteEntity(tenant.tenantId, versionRow(version)).catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) throw error;
    });
  }

  /** The newest version of any language, if any. */
  async latest(tenant: TenantScope): Promise<TermsVersion | undefined> {
    for await (const version of this.all(tenant, 1)) return version;
    return undefined;
  }

  /** Every version, newest first (a tenant publishes a few a year). */
  async *all(tenant: TenantScope, pageSize = 100): AsyncGenerator<TermsVersion> {
    const table = await this.table(tenant);
    for await (const page of table
      .listEntities<VersionEntity>({ queryOptions: { filter: odata`PartitionKey eq ${tenant.tenantId}` } })
      .byPage({ maxPageSize: pageSize })) {
      for (const entity of page) yield fromEntity(entity);
    }
  }

  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.terms);
  }
}

function fromEntity(entity: VersionEntity): TermsVersion {
  let text = '';
  for (let i = 0; i < entity.textChunks; i++) text += entity[`text${i}`] ?? '';
  return {
    version: entity.version,
    language: entity.language,
    title: entity.title,
    ...(entity.summary ? { summary: entity.summary } : {}),
    text,
    sha256: entity.sha256,
    requireReacceptance: entity.requireReacceptance,
    publishedAt: entity.publishedAt,
    publishedBy: entity.publishedBy,
    defaultLanguage: entity.defaultLanguage,
  };
}
