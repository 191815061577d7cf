// `npm run bench`: starts an in-memory Azurite of its own, runs the discovery, export, ingestion, purge and
// residency scenarios against the product's services and against the raw Azure SDK on the same Azurite,
// prints one JSON document to stdout (progress goes to stderr) and stops Azurite. Sizes: see scale.ts and
// README.md.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

import { discoveryScenario } from './discovery';
import { startBench } from './environment';
import { exportScenario } from './exportScenario';
import { ingestionScenario } from './ingestion';
import { checkSeederLayout } from './layoutCheck';
import { purgeScenario } from './purge';
import { residencyScenario } from './residency';
import { type ScenarioName, scaleFrom } from './scale';
import { collectGarbage, now, progress, round } from './util';

async function main(): Promise<void> {
  const started = now();
  const loadAtStart = loadavg().map((n) => round(n, 2));
  const scale = scaleFrom();
  progress(`scale ${scale.name}: ${JSON.stringify(scale)}`);
  const bench = await startBench();
  progress(`Azurite on ports ${JSON.stringify(bench.azurite.ports)}`);
  try {
    const layout = await checkSeederLayout(bench, scale.recordBytes);
    progress(`seeder layout matches upsert's (${layout.rowsCompared} rows compared)`);
    if (Object.keys(layout.otherTablesUpsertWrote).length > 0) {
      progress(
        `upsert also wrote rows the seeder does not: ${JSON.stringify(layout.otherTablesUpsertWrote)}`,
      );
    }
    const runs = (name: ScenarioName) => scale.scenarios.includes(name);
    const discovery = runs('discovery') ? await discoveryScenario(bench, scale) : undefined;
    collectGarbage();
    const exported = runs('export') ? await exportScenario(bench, scale) : undefined;
    collectGarbage();
    const ingestion = runs('ingestion') ? await ingestionScenario(bench, scale) : undefined;
    collectGarbage();
    const purge = runs('purge') ? await purgeScenario(bench, scale) : undefined;
    collectGarbage();
    const residency = runs('residency') ? await residencyScenario(bench, scale) : undefined;
    const output = {
      azurite: (
        JSON.parse(readFileSync(require.resolve('azurite/package.json'), 'utf8')) as { version: string }
      ).version,
      node: process.version,
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        platform: process.platform,
        // Other work on the machine (1, 5, 15 min) skews the figures: CPU-bound paths suffer first.
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadavg().map((n) => round(n, 2)),
      },
      gcExposed: collectGarbage(),
      scale,
      requestCounting: {
        table:
          'every HTTP request to the Table service, by a perRetry pipeline policy on every Table client (StorageClientOptions.tablePolicies and the raw clients); requestsByService.tablePolicy is that count',
        all: "every HTTP request of the process by Azurite service (table, blob, queue), through node's http.client.request.start diagnostics channel, since the product's Blob and Queue clients take no policy; 'requests' figures are this total",
      },
      seeding: {
        method:
          "other subjects' records (and the export subject's) written by raw entity-group transactions of exactly the rows RecordStore.upsert writes (records sealed with the subject key, ~key, ~id_ rows {kind}, recordLookup _i alias rows {subjectKey, holder, seenAt} and _r/_d rows, expiry index entries carrying the ETag of their record row, taken from the transactions' sub-responses), built with the store's key helpers, record and device HMACs, recordContent, sealed boxes, pseudonymiser key and key provider; the discovery subject's records go through records.upsert",
        layoutCheck: layout,
        discovery: discovery?.seeding ?? 'not run',
        export: exported?.seeding ?? 'not run',
        purge: purge?.seeding ?? 'not run',
        residency: residency?.seeding ?? 'not run',
      },
      discovery: discovery?.result ?? 'not run',
      export: exported?.result ?? 'not run',
      ingestion: ingestion ?? 'not run',
      purge: purge?.result ?? 'not run',
      residency: residency?.result ?? 'not run',
      totalSeconds: 0,
    };
    output.totalSeconds = round((now() - started) / 1000);
    process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  } finally {
    progress('stopping Azurite');
    await bench.stop();
  }
}

main().then(
  () => progress('done'),
  (error: unknown) => {
    progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
