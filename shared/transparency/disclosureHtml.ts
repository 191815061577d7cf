// HTML for people of what the service discloses (the processing register, the access report's per-category
// part and the rights): one stylesheet that reads on a phone as well as on a desk (cards, not wide tables),
// everything escaped, no script, a Content-Security-Policy that allows only the inline style. Pure.
import { escapeHtml } from './htmlText';
import type { CategoryDisclosure, SubjectRight } from './categoryDisclosure';

export const DISCLOSURE_STYLE = `
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --card: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  margin: 0 auto; padding: 1rem; max-width: 60rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0.5rem 0 0.75rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.75rem; border-bottom: 1px solid var(--line); padding-bottom: 0.25rem; }
h3 { font-size: 1.05rem; margin: 0 0 0.5rem; }
p.lead { color: var(--muted); margin-top: 0; }
.cards { display: grid; gap: 0.75rem; grid-template-columns: repeat(auto-fill, minmax(min(100%, 26rem), 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem 1rem; }
.card .tag { font: 0.8rem ui-monospace, SFMono-Regular, Menlo, monospace; color: var(--muted); }
dl { margin: 0; }
dt { font-weight: 600; margin-top: 0.5rem; }
dd { margin: 0; overflow-wrap: anywhere; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dl.facts dt { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
th { background: var(--card); }
.scroll { overflow-x: auto; }
ul { padding-left: 1.25rem; }
@media (max-width: 40rem) {
  body { padding: 0.75rem; font-size: 15px; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: 0.4rem; }
}
@media print { .card { break-inside: avoid; } }
`;

/** The opening of a page, up to and including its h1. */
export function pageHead(title: string, lang = 'en'): string {
  return `<!DOCTYPE html>
<html lang="${escapeHtml(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title>
<style>${DISCLOSURE_STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
`;
}

export const PAGE_TAIL = '</body>\n</html>\n';

/**
 * One card per category: name in words, what it holds, source, purpose, recipients, retention and its
 * geography (how and where that geography stores data is the same for every category: see storageFacts).
 */
export function categoryCards(
  categories: readonly CategoryDisclosure[],
  extra?: (c: CategoryDisclosure) => string,
): string {
  const cards = categories.map(
    (c) => `<section class="card">
<h3>${escapeHtml(c.label)} <span class="tag">${escapeHtml(c.category)}</span></h3>
<dl>
<dt>What it holds</dt><dd>${escapeHtml(c.holds)}</dd>
<dt>Where it comes from</dt><dd>${escapeHtml(c.source)}</dd>
<dt>Why it is processed</dt><dd>${escapeHtml(c.purpose)}</dd>
<dt>Whose data it is</dt><dd>${escapeHtml(c.subjects)}</dd>
<dt>Who receives it</dt><dd>${escapeHtml(c.recipients)}</dd>
<dt>How long it is kept</dt><dd>${escapeHtml(c.retention.words)}</dd>
<dt>Where it is stored</dt><dd>${escapeHtml(`The ${c.storedIn.geography} geography`)}</dd>
${extra ? extra(c) : ''}</dl>
</section>`,
  );
  return `<div class="cards">\n${cards.join('\n')}\n</div>\n`;
}

/** The data subject's rights, each with how to exercise it. */
export function rightsSection(rights: readonly SubjectRight[]): string {
  const cards = rights.map(
    (r) => `<section class="card">
<h3>${escapeHtml(r.right)} <span class="tag">${escapeHtml(r.law)}</span></h3>
<p>${escapeHtml(r.what)}</p>
<p><strong>How:</strong> ${escapeHtml(r.how)}</p>
</section>`,
  );
  return `<h2>Your rights</h2>\n<div class="cards">\n${cards.join('\n')}\n</div>\n`;
}

/** Where and how the data is stored, said once for every category. */
export function storageFact(c: CategoryDisclosure): [string, string] {
  return [
    'Where it is stored',
    escapeHtml(`The ${c.storedIn.geography} geography (${c.storedIn.serves}): ${c.storedIn.how}.`),
  ];
}

/** A definition list of facts (label → already escaped HTML). */
export function facts(rows: readonly [string, string][]): string {
  return `<dl class="facts">\n${rows.map(([name, value]) => `<dt>${escapeHtml(name)}</dt><dd>${value}</dd>`).join('\n')}\n</dl>\n`;
}
