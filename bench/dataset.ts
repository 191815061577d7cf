// Deterministic synthetic data: subjects with a UPN and an object id, and records of every category whose
// `data` is about a given size of JSON, shaped like what devices and the directory report (including other
// people's identifiers, so that export redaction has work to do).
import { DEVICE_REPORTED_CATEGORIES } from '../shared/records/personalDataRecord';
import type { UpsertInput } from '../shared/records/recordStore';
import { type DataSubject } from '../shared/vocabulary/dataSubject';
import { RECORD_CATEGORIES } from '../shared/vocabulary/categories';

/** mulberry32: small, fast and good enough for test data. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (rng: () => number, length: number) =>
  Array.from({ length }, () => Math.floor(rng() * 16).toString(16)).join('');

const pick = <T>(rng: () => number, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

/** A version 4 UUID from the generator. */
export function uuid(rng: () => number): string {
  const h = hex(rng, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[Math.floor(rng() * 4)]}${h.slice(17, 20)}-${h.slice(20)}`;
}

export interface BenchSubject {
  subject: Required<Pick<DataSubject, 'upn' | 'objectId'>>;
  deviceName: string;
}

export function benchSubject(rng: () => number, label: string): BenchSubject {
  return {
    subject: { upn: `${label}@contoso.com`, objectId: uuid(rng) },
    deviceName: `${label.slice(0, 10).toUpperCase()}-${hex(rng, 4).toUpperCase()}`,
  };
}

const WORDS = (
  'policy sync check-in compliant encryption bitlocker defender update reboot battery wifi vpn certificate ' +
  'enrolment app install uninstall driver firmware storage memory cpu thermal crash report telemetry ' +
  'signal login logout session token renewal error warning info network latency disk usage screen'
).split(' ');
const MODELS = ['Surface Laptop 7', 'ThinkPad X1 Carbon', 'Latitude 7450', 'EliteBook 840', 'MacBook Air'];
const STATES = ['compliant', 'noncompliant', 'inGracePeriod', 'unknown'];

/** Record data of about `bytes` bytes of JSON. */
export function recordData(rng: () => number, bytes: number, owner: BenchSubject): Record<string, unknown> {
  const data: Record<string, unknown> = {
    model: pick(rng, MODELS),
    serialNumber: hex(rng, 12).toUpperCase(),
    osVersion: `10.0.${22000 + Math.floor(rng() * 3000)}.${Math.floor(rng() * 5000)}`,
    complianceState: pick(rng, STATES),
    lastCheckIn: new Date(Date.UTC(2026, 0, 1) + Math.floor(rng() * 3e10)).toISOString(),
    primaryUserUpn: owner.subject.upn,
    managerUpn: `manager${Math.floor(rng() * 500)}@contoso.com`,
    notes: '',
  };
  const size = Buffer.byteLength(JSON.stringify(data));
  const words: string[] = [];
  let length = 0;
  while (size + length < bytes) {
    const word = `${pick(rng, WORDS)}${rng() < 0.3 ? `=${Math.floor(rng() * 10000)}` : ''}`;
    words.push(word);
    length += word.length + 1;
  }
  data.notes = words.join(' ');
  return data;
}

const YEAR_START = Date.UTC(2025, 6, 1);
const YEAR_MS = 365 * 24 * 60 * 60 * 1000;

/** `count` records of a subject, spread evenly over every category (device-reported ones name the device). */
export function subjectRecords(
  rng: () => number,
  owner: BenchSubject,
  count: number,
  recordBytes: number,
  idPrefix: string,
): UpsertInput[] {
  const records: UpsertInput[] = [];
  for (let i = 0; i < count; i++) {
    const category = RECORD_CATEGORIES[i % RECORD_CATEGORIES.length]!;
    records.push({
      category,
      recordId: `${idPrefix}-${i}`,
      subject: owner.subject,
      // Spread over a year, as collected data is (the expiry index partitions by the month things fall due).
      occurredAt: new Date(YEAR_START + Math.floor(rng() * YEAR_MS)).toISOString(),
      data: recordData(rng, recordBytes, owner),
      ...(DEVICE_REPORTED_CATEGORIES.includes(category) ? { deviceName: owner.deviceName } : {}),
    });
  }
  return records;
}
