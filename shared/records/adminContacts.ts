// Tenant admins' own contact data (SPEC §9): one record of category `adminContact` per admin, keyed by their
// object id and sealed with their data key like every record, so requests discover, export, rectify and
// erase it as they do any other. Each admin reads, corrects and deletes their own; Privacy.Admin lists them.
import { z } from 'zod';

import type { Clock } from '../clock';
import type { Page, PageRequest } from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import type { RecordBrowser } from './recordBrowser';
import type { RecordStore } from './recordStore';

export const adminContactSchema = z
  .strictObject({
    displayName: z.string().trim().min(1).max(256),
    email: z.email().max(320),
    phone: z
      .string()
      .trim()
      .regex(/^\+?[0-9 ()./-]{3,32}$/, 'a phone number')
      .optional(),
    jobTitle: z.string().trim().min(1).max(128).optional(),
  })
  .meta({ id: 'AdminContact' });
export type AdminContactInput = z.infer<typeof adminContactSchema>;

export interface AdminContact extends AdminContactInput {
  objectId: string;
  upn?: string | undefined;
  updatedAt: string;
}

export interface Admin {
  objectId: string;
  upn?: string | undefined;
}

const CATEGORY = 'adminContact' as const;

export class AdminContacts {
  constructor(
    private readonly records: RecordStore,
    private readonly browser: RecordBrowser,
    private readonly clock: Clock,
  ) {}

  async get(tenant: TenantScope, admin: Admin): Promise<AdminContact | undefined> {
    const { subjectKey } = await this.records.subjectOf(tenant, { objectId: admin.objectId });
    for await (const record of this.records.list(tenant, subjectKey, CATEGORY)) {
      if (record.recordId === admin.objectId && !record.deletedAt)
        return view(record.data, record.subject, record.occurredAt);
    }
    return undefined;
  }

  /** Creates or corrects the caller's contact data (the whole of it: fields left out are removed). */
  async put(tenant: TenantScope, admin: Admin, input: AdminContactInput): Promise<AdminContact> {
    const occurredAt = this.clock().toISOString();
    await this.records.upsert(tenant, {
      category: CATEGORY,
      recordId: admin.objectId,
      subject: { objectId: admin.objectId, ...(admin.upn ? { upn: admin.upn } : {}) },
      occurredAt,
      data: { ...input },
    });
    return {
      ...input,
      objectId: admin.objectId,
      ...(admin.upn ? { upn: admin.upn } : {}),
      updatedAt: occurredAt,
    };
  }

  /** Deletes the caller's contact data: gone from every view at once, purged from storage by retention. */
  async delete(tenant: TenantScope, admin: Admin): Promise<boolean> {
    if (!(await this.get(tenant, admin))) return false;
    await this.records.softDeleteRecord(tenant, CATEGORY, admin.objectId, this.clock().toISOString());
    return true;
  }

  async list(tenant: TenantScope, page: PageRequest): Promise<Page<AdminContact>> {
    const found = await this.browser.page(tenant, { categories: [CATEGORY], exclude: new Set() }, page);
    return {
      ...found,
      items: found.items
        .filter((record) => !record.deletedAt)
        .map((record) => view(record.data, record.subject, record.occurredAt)),
    };
  }
}

function view(
  data: Record<string, unknown>,
  subject: { objectId?: string; upn?: string },
  at: string,
): AdminContact {
  const input = data as AdminContactInput;
  return {
    objectId: subject.objectId ?? '',
    ...(subject.upn ? { upn: subject.upn } : {}),
    displayName: input.displayName,
    email: input.email,
    ...(input.phone ? { phone: input.phone } : {}),
    ...(input.jobTitle ? { jobTitle: input.jobTitle } : {}),
    updatedAt: at,
  };
}
