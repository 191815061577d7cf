// Download links to access and export packages: read-only, valid 15 minutes, each one audited.
import { randomUUID } from 'node:crypto';

import type { AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { DomainError, notFound } from '../errors';
import type { TenantScope } from '../residency/tenantDirectory';
import { CONTAINERS } from '../storage/names';
import type { ChangeContext, DataSubjectRequestService } from './requestService';

export const LINK_LIFETIME_MS = 15 * 60 * 1000;

export interface PackageLink {
  url: string;
  expiresAt: string;
  sha256: string;
  sizeBytes: number;
}

interface PackageResult {
  package?: { blobName: string; sha256: string; sizeBytes: number };
}

export class PackageLinks {
  constructor(
    private readonly requests: DataSubjectRequestService,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  async issue(tenant: TenantScope, requestId: string, change: ChangeContext): Promise<PackageLink> {
    const request = await this.requests.load(tenant, requestId);
    if (request.type !== 'access' && request.type !== 'export') {
      throw new DomainError('InvalidState', `A ${request.type} request has no package.`);
    }
    const pkg = (request.result as PackageResult | undefined)?.package;
    if (request.status !== 'completed' || !pkg) {
      throw new DomainError('InvalidState', `The package is not ready: the request is '${request.status}'.`);
    }
    const container = await tenant.account.container(CONTAINERS.exportPackages);
    if (!(await container.getBlobClient(pkg.blobName).exists())) {
      throw notFound(`The package of request ${requestId} (packages are kept 30 days after completion)`);
    }
    const expiresAt = new Date(this.clock().getTime() + LINK_LIFETIME_MS);
    const url = await tenant.account.readOnlyBlobUrl(CONTAINERS.exportPackages, pkg.blobName, expiresAt);
    await this.audit.append(tenant, {
      id: randomUUID(),
      action: 'export.linkIssued',
      actor: change.actor,
      target: { type: 'dataSubjectRequest', id: requestId },
      outcome: 'success',
      correlationId: change.correlationId,
      details: { expiresAt: expiresAt.toISOString(), sha256: pkg.sha256 },
    });
    return { url, expiresAt: expiresAt.toISOString(), sha256: pkg.sha256, sizeBytes: pkg.sizeBytes };
  }
}
