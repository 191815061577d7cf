// report.html of an access package: a readable page of the request, the counts, each category's records and
// the audit events, everything escaped; its tables go to a temporary file while the records stream by.
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';

import type { AuditEvent } from '../audit/auditEvent';
import type { DataSubject } from '../vocabulary/dataSubject';
import type { PackagedRecord } from './packageRecords';
import { BatchedWriter } from './packageStreams';
import type { CategoryDisclosure, SubjectRight } from '../transparency/categoryDisclosure';
import {
  categoryCards,
  facts,
  pageHead,
  PAGE_TAIL,
  rightsSection,
  storageFact,
} from '../transparency/disclosureHtml';
import { escapeHtml } from '../transparency/htmlText';
import { CATEGORY_WORDS } from '../vocabulary/categoryWords';

/**
 * What the manifest says about the request: a data subject request (its regulation and subject), or an
 * alert data request (the devices whose alerts the package holds).
 */
export interface PackageRequest {
  id: string;
  tenantId: string;
  type: string;
  regulation?: string;
  receivedAt: string;
  subject?: DataSubject;
  deviceNames?: readonly string[];
}

/**
 * The body of `report.html` (the tables), written to a private temporary file while the records stream
 * into their JSON files; the report entry is put together from it at the end.
 */
export class ReportBody extends BatchedWriter {
  constructor(
    readonly path: string,
    signal: AbortSignal,
  ) {
    super(createWriteStream(path, { mode: 0o600 }), signal);
    // A failing disk surfaces at the next write or at close.
    this.sink.on('error', () => undefined);
  }

  startCategory(category: string): void {
    this.append(`<section>\n<h2>${escapeHtml(categoryHeading(category))}</h2>\n`);
  }

  record(record: PackagedRecord, first: boolean): void {
    if (first) {
      this.append(
        '<div class="scroll"><table>\n<thead><tr><th>Record</th><th>Occurred</th><th>Deleted</th><th>Device</th><th>Data</th></tr></thead>\n<tbody>\n',
      );
    }
    this.append(
      `<tr><td>${escapeHtml(record.recordId)}</td><td>${escapeHtml(record.occurredAt)}</td>` +
        `<td>${record.deleted ? `deleted ${escapeHtml(record.deletedAt ?? '')}` : ''}</td>` +
        `<td>${escapeHtml(record.deviceName ?? '')}</td><td>${fieldList(record.data)}</td></tr>\n`,
    );
  }

  endCategory(count: number): void {
    this.append(count === 0 ? '<p>No records.</p>\n</section>\n' : '</tbody>\n</table></div>\n</section>\n');
  }

  startAuditEvents(): void {
    this.append('<section>\n<h2>Audit events</h2>\n');
  }

  auditEvent(event: AuditEvent, first: boolean): void {
    if (first) {
      this.append(
        '<div class="scroll"><table>\n<thead><tr><th>Time</th><th>Action</th><th>Actor</th><th>Target</th><th>Outcome</th><th>Details</th></tr></thead>\n<tbody>\n',
      );
    }
    const actor = `${event.actor.type} ${event.actor.upn ?? event.actor.id}`;
    this.append(
      `<tr><td>${escapeHtml(event.time)}</td><td>${escapeHtml(event.action)}</td><td>${escapeHtml(actor)}</td>` +
        `<td>${escapeHtml(`${event.target.type} ${event.target.id}`)}</td><td>${escapeHtml(event.outcome)}</td>` +
        `<td>${fieldList(event.details)}</td></tr>\n`,
    );
  }

  endAuditEvents(count: number): void {
    this.endCategory(count);
  }

  async close(): Promise<void> {
    this.flushParts();
    this.sink.end();
    await finished(this.sink);
  }

  discard(): void {
    this.sink.destroy();
  }
}

/** What the report says about the request. */
type ReportRequest = Pick<PackageRequest, 'id' | 'type' | 'regulation' | 'receivedAt' | 'subject'>;

export function reportHead(
  request: ReportRequest,
  generatedAt: Date,
  counts: Record<string, number>,
  deletedCounts: Record<string, number>,
  disclosure?: PackageDisclosureView,
): string {
  const subject = [request.subject?.upn, request.subject?.email, request.subject?.objectId]
    .filter((identifier): identifier is string => identifier !== undefined)
    .map(escapeHtml)
    .join('<br>');
  const details: [string, string][] = [
    ['Request', escapeHtml(request.id)],
    ['Type', escapeHtml(request.type)],
    ['Regulation', escapeHtml(request.regulation ?? '')],
    ['Received', escapeHtml(request.receivedAt)],
    ['Generated', escapeHtml(generatedAt.toISOString())],
    ['Data subject', subject],
  ];
  const summary = Object.entries(counts)
    .map(([category, count]) => {
      const name = category === 'auditEvents' ? 'Audit events' : categoryHeading(category);
      const deleted = deletedCounts[category] ? ` (${deletedCounts[category]} deleted, not yet purged)` : '';
      return `<tr><td>${escapeHtml(name)}</td><td>${count}${deleted}</td></tr>`;
    })
    .join('\n');
  const about = disclosure
    ? `<h2>About this data</h2>
<p>For each kind of personal data held about you: what it is, where it comes from, why it is processed, who
receives it, how long it is kept and where it is stored. ${escapeHtml(disclosure.profiling)}</p>
${disclosure.categories[0] ? facts([storageFact(disclosure.categories[0])]) : ''}${categoryCards(disclosure.categories)}${rightsSection(disclosure.rights)}`
    : '';
  return `${pageHead('Personal data report')}<p class="lead">The personal data held about you, as of the time this report was generated. Identifiers of
other people have been replaced by [redacted]. The machine-readable files in this package hold the same data.</p>
${facts(details)}
<h2>Summary</h2>
<div class="scroll"><table>
<thead><tr><th>Category</th><th>Records</th></tr></thead>
<tbody>
${summary}
</tbody>
</table></div>
${about}<h2>Your records</h2>
`;
}

export const REPORT_TAIL = PAGE_TAIL;

/** What the report discloses (exportPackage's PackageDisclosure). */
export interface PackageDisclosureView {
  categories: readonly CategoryDisclosure[];
  rights: readonly SubjectRight[];
  profiling: string;
}

/** A category's heading: its name in words, with the name the package's files use. */
export function categoryHeading(category: string): string {
  const words = (CATEGORY_WORDS as Record<string, { label: string } | undefined>)[category];
  return words ? `${words.label} (${category})` : category;
}

/** A record's data as `path: value` pairs, so that nested data reads without knowing its shape. */
function fieldList(data: Record<string, unknown>): string {
  const fields: [string, string][] = [];
  flatten(data, '', fields);
  if (fields.length === 0) return '';
  return `<dl>${fields.map(([path, value]) => `<dt>${escapeHtml(path)}</dt><dd>${escapeHtml(value)}</dd>`).join('')}</dl>`;
}

function flatten(value: unknown, path: string, into: [string, string][]): void {
  if (Array.isArray(value)) {
    if (value.length === 0) into.push([path, '[]']);
    value.forEach((item, index) => flatten(item, `${path}[${index}]`, into));
  } else if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0 && path) into.push([path, '{}']);
    for (const [key, item] of entries) flatten(item, path ? `${path}.${key}` : key, into);
  } else {
    into.push([path, value === undefined ? '' : String(value)]);
  }
}
