// report.html of an access package: a readable page of the request, the counts, each category's records and
// the audit events, everything escaped; its tables go to a temporary file while the records stream by.
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';

import type { AuditEvent } from '../audit/auditEvent';
import type { DataSubject } from '../vocabulary/dataSubject';
import type { PackagedRecord } from './packageRecords';
import { BatchedWriter } from './packageStreams';

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
    this.append(`<section>\n<h2>${escapeHtml(category)}</h2>\n`);
  }

  record(record: PackagedRecord, first: boolean): void {
    if (first) {
      this.append(
        '<table>\n<thead><tr><th>Record</th><th>Occurred</th><th>Deleted</th><th>Device</th><th>Data</th></tr></thead>\n<tbody>\n',
      );
    }
    this.append(
      `<tr><td>${escapeHtml(record.recordId)}</td><td>${escapeHtml(record.occurredAt)}</td>` +
        `<td>${record.deleted ? `deleted ${escapeHtml(record.deletedAt ?? '')}` : ''}</td>` +
        `<td>${escapeHtml(record.deviceName ?? '')}</td><td>${fieldList(record.data)}</td></tr>\n`,
    );
  }

  endCategory(count: number): void {
    this.append(count === 0 ? '<p>No records.</p>\n</section>\n' : '</tbody>\n</table>\n</section>\n');
  }

  startAuditEvents(): void {
    this.append('<section>\n<h2>Audit events</h2>\n');
  }

  auditEvent(event: AuditEvent, first: boolean): void {
    if (first) {
      this.append(
        '<table>\n<thead><tr><th>Time</th><th>Action</th><th>Actor</th><th>Target</th><th>Outcome</th><th>Details</th></tr></thead>\n<tbody>\n',
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
      const name = category === 'auditEvents' ? 'Audit events' : category;
      const deleted = deletedCounts[category] ? ` (${deletedCounts[category]} deleted, not yet purged)` : '';
      return `<tr><td>${escapeHtml(name)}</td><td>${count}${deleted}</td></tr>`;
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Personal data report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
dl { margin: 0; display: grid; grid-template-columns: auto 1fr; gap: 0 0.75rem; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
</style>
</head>
<body>
<h1>Personal data report</h1>
<p>The personal data held about you, as of the time this report was generated. Identifiers of other people
have been replaced by [redacted]. The machine-readable files in this package hold the same data.</p>
<table>
${details.map(([name, value]) => `<tr><th>${name}</th><td>${value}</td></tr>`).join('\n')}
</table>
<h2>Summary</h2>
<table>
<thead><tr><th>Category</th><th>Records</th></tr></thead>
<tbody>
${summary}
</tbody>
</table>
`;
}

export const REPORT_TAIL = '</body>\n</html>\n';

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

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => HTML_ESCAPES[character] ?? character);
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
