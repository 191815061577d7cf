// Download links to packages (access and export packages of data subject requests, extractions of alert data
// requests): single-purpose, valid 15 minutes, served by the function app, which decrypts the package as it
// streams it. Each link issued and each download is audited, naming the request that made the package.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';

import type { AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import type { Pseudonymizer } from '../crypto/pseudonymizer';
import { DomainError, notFound } from '../errors';
import type { PackageStore } from '../exports/packageStore';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import {
  claimedTenant,
  linkSigningKey,
  type PackageSourceType,
  signPackageLink,
  verifyPackageLink,
} from './packageLinkToken';
import type { ChangeContext, DataSubjectRequestService } from './requestService';

export const LINK_LIFETIME_MS = 15 * 60 * 1000;
/** The download route under the API prefix: `/api/package-downloads/{token}`. */
export const DOWNLOAD_ROUTE = 'package-downloads';
const DOWNLOAD_ACTOR = { type: 'app', id: 'package-download-link' } as const;

export interface PackageLink {
  url: string;
  expiresAt: string;
  sha256: string;
  sizeBytes: number;
}

export interface PackageDownload {
  /** The ZIP, decrypted as it is read. */
  stream: Readable;
  sha256: string;
  sizeBytes: number;
  fileName: string;
}

/** The request a package was made for: what a link's audit events name as their target. */
export interface PackageSource {
  type: PackageSourceType;
  id: string;
}

/** A stored package as its request keeps it: where its index row is, and the integrity of its ZIP. */
export interface LinkedPackage {
  packageRow: string;
  /** The subject (or an alert request's pseudo subject) whose data key wraps the package key. */
  subjectKey: string;
  sha256: string;
  sizeBytes: number;
}

/** Where a subject's packages are now: a subject merged into another has had its packages moved there. */
export type CurrentSubject = (tenant: TenantScope, subjectKey: string) => Promise<string>;

/** What `request.result.package` holds once an access or export request completed. */
interface PackageResult {
  package?: { blobName: string; packageRow?: string; subjectKey?: string; sha256: string; sizeBytes: number };
}

const packageGone = (requestId: string) =>
  notFound(`The package of request ${requestId} (packages are kept 30 days after completion)`);

// One answer for every refusal, so a caller learns nothing about which check a link failed.
const linkNotFound = () =>
  new DomainError('NotFound', 'This download link is not valid, has expired, or its package was deleted.');

export class PackageLinks {
  constructor(
    private readonly requests: DataSubjectRequestService,
    private readonly packages: PackageStore,
    private readonly directory: TenantDirectory,
    private readonly pseudonymizer: Pseudonymizer,
    private readonly audit: AuditLog,
    private readonly currentSubject: CurrentSubject,
    private readonly clock: Clock,
  ) {}

  /** A link to the package of a completed request; `baseUrl` is the origin the app is reached at. */
  async issue(
    tenant: TenantScope,
    requestId: string,
    change: ChangeContext,
    baseUrl: string,
  ): Promise<PackageLink> {
    const request = await this.requests.load(tenant, requestId);
    if (request.type !== 'access' && request.type !== 'export') {
      throw new DomainError('InvalidState', `A ${request.type} request has no package.`);
    }
    const pkg = (request.result as PackageResult | undefined)?.package;
    if (request.status !== 'completed' || !pkg) {
      throw new DomainError('InvalidState', `The package is not ready: the request is '${request.status}'.`);
    }
    // A package of before packages were encrypted has no index row: it cannot be served any more.
    if (!pkg.packageRow || !pkg.subjectKey) throw packageGone(requestId);
    const subjectKey = await this.currentSubject(tenant, pkg.subjectKey);
    return this.issueFor(
      tenant,
      { type: 'dataSubjectRequest', id: requestId },
      { packageRow: pkg.packageRow, subjectKey, sha256: pkg.sha256, sizeBytes: pkg.sizeBytes },
      change,
      baseUrl,
    );
  }

  /**
   * A link to a stored package of a request that the caller has found ready (a completed request of its
   * own kind); NotFound when the package is gone (expired, or its data key destroyed).
   */
  async issueFor(
    tenant: TenantScope,
    source: PackageSource,
    pkg: LinkedPackage,
    change: ChangeContext,
    baseUrl: string,
  ): Promise<PackageLink> {
    try {
      await this.packages.describe(tenant, pkg.subjectKey, pkg.packageRow);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'NotFound') throw packageGone(source.id);
      throw error;
    }
    const linkId = randomUUID();
    // Whole seconds, as the token's `exp` has them, so the answer says exactly when the link stops working.
    const expiresAt = new Date(Math.floor((this.clock().getTime() + LINK_LIFETIME_MS) / 1000) * 1000);
    const token = await signPackageLink(
      {
        tenantId: tenant.tenantId,
        requestId: source.id,
        source: source.type,
        subjectKey: pkg.subjectKey,
        packageRow: pkg.packageRow,
        linkId,
        expiresAt,
      },
      await this.signingKey(tenant),
    );
    await this.audit.append(tenant, {
      id: randomUUID(),
      action: 'export.linkIssued',
      actor: change.actor,
      target: { type: source.type, id: source.id },
      outcome: 'success',
      correlationId: change.correlationId,
      details: { linkId, expiresAt: expiresAt.toISOString(), sha256: pkg.sha256 },
    });
    return {
      url: `${baseUrl.replace(/\/+$/, '')}/api/${DOWNLOAD_ROUTE}/${token}`,
      expiresAt: expiresAt.toISOString(),
      sha256: pkg.sha256,
      sizeBytes: pkg.sizeBytes,
    };
  }

  /**
   * The package a link names, decrypting as it is read; audited before it is handed out. 404 NotFound for
   * any link that is malformed, tampered with, expired, of another purpose or tenant, or whose package is gone.
   */
  async download(token: string): Promise<PackageDownload> {
    const tenantId = claimedTenant(token);
    if (!tenantId) throw linkNotFound();
    const tenant = await this.directory.resolve(tenantId);
    const claims = await verifyPackageLink(token, await this.signingKey(tenant), this.clock());
    if (!claims || claims.tenantId !== tenant.tenantId) throw linkNotFound();
    let opened;
    try {
      const subjectKey = await this.currentSubject(tenant, claims.subjectKey);
      opened = await this.packages.open(tenant, subjectKey, claims.packageRow);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'NotFound') throw linkNotFound();
      throw error;
    }
    try {
      await this.audit.append(tenant, {
        id: randomUUID(),
        action: 'export.downloaded',
        actor: DOWNLOAD_ACTOR,
        target: { type: claims.source ?? 'dataSubjectRequest', id: claims.requestId },
        outcome: 'success',
        correlationId: claims.linkId,
        details: { linkId: claims.linkId, sizeBytes: opened.sizeBytes },
      });
    } catch (error) {
      // No download that is not in the audit log: the blob's download stops here.
      opened.stream.destroy();
      throw error;
    }
    return {
      stream: opened.stream,
      sha256: opened.sha256,
      sizeBytes: opened.sizeBytes,
      fileName: `${claims.requestId}.zip`,
    };
  }

  private async signingKey(tenant: TenantScope): Promise<Uint8Array> {
    return linkSigningKey(await this.pseudonymizer.keyFor(tenant));
  }
}
