// The processing register as a page a person reads (GET .../processing-register with Accept: text/html),
// from the same value as the JSON. Pure.
import { categoryCards, facts, pageHead, PAGE_TAIL, storageFact } from './disclosureHtml';
import { escapeHtml } from './htmlText';
import type { ProcessingRegister } from './processingRegister';

export function registerHtml(register: ProcessingRegister): string {
  const access = register.operatorAccess;
  const parts = [
    pageHead('Record of processing activities'),
    `<p class="lead">Kept by the processor for ${escapeHtml(register.controller.name)} under GDPR Art. 30(2). ` +
      'Built from the tables the service enforces, as of the time shown.</p>\n',
    facts([
      [
        'Controller',
        `${escapeHtml(register.controller.name)} (tenant ${escapeHtml(register.controller.tenantId)}, ${escapeHtml(register.controller.countryCode)})`,
      ],
      ['Processor', `${escapeHtml(register.processor.name)}: ${escapeHtml(register.processor.role)}`],
      ['Generated', escapeHtml(register.generatedAt)],
      ...(register.categories[0] ? [storageFact(register.categories[0])] : []),
      ['Staff access', escapeHtml(register.categories[0]?.staffAccess ?? '')],
      ['Transfers', escapeHtml(register.transfers)],
      ['Profiling, advertising, marketing', escapeHtml(register.profilingAdvertisingMarketing)],
    ]),
    '<h2>Categories of personal data</h2>\n',
    categoryCards(register.categories),
    '<h2>Retention rules</h2>\n<div class="scroll"><table>\n<thead><tr><th>Data</th><th>Action</th><th>After</th><th>Counted from</th></tr></thead>\n<tbody>\n',
    ...register.retentionPolicy.map(
      (rule) =>
        `<tr><td>${escapeHtml(rule.data)}</td><td>${escapeHtml(rule.action)}</td><td>${escapeHtml(rule.after)}</td><td>${escapeHtml(rule.from)}</td></tr>\n`,
    ),
    '</tbody>\n</table></div>\n',
    '<h2>Operator access</h2>\n',
    facts([
      ['Standing access', 'None'],
      ['Grants', `${access.grantMinutes.min} to ${access.grantMinutes.max} minutes, from the last approval`],
      ['Undecided requests', `expire after ${access.undecidedRequestsExpireAfterHours} hours`],
      [
        'Tenant approval',
        access.tenantApprovalRequired ? 'required by this tenant' : 'not required by this tenant',
      ],
      ['Authentication context', escapeHtml(access.authenticationContext)],
      ['Staff locations', escapeHtml(access.staffLocations.join(', ') || 'none')],
    ]),
    `<ul>\n${access.rules.map((rule) => `<li>${escapeHtml(rule)}</li>`).join('\n')}\n</ul>\n`,
    '<h2>Technical and organisational measures</h2>\n<div class="cards">\n',
    ...register.measures.map(
      (m) =>
        `<section class="card"><h3>${escapeHtml(m.name)}</h3><p>${escapeHtml(m.description)}</p></section>\n`,
    ),
    '</div>\n',
    PAGE_TAIL,
  ];
  return parts.join('');
}
