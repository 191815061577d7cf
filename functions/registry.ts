// Every function of the app, in one list: functions/index.ts registers it with the Azure Functions host and
// local/ serves the same list. Add a new function here and both hosts have it.
import type { FunctionDefinition } from '../shared/hosting/functionDefinition';
import { adminContactList, adminContactMe } from './adminContacts';
import { alertDataExport, alertDataRequest, alertDataRequests } from './alertDataRequests';
import { alertDataWork } from './alertDataWork';
import { alertRequestRecovery } from './alertRequestRecovery';
import { auditEvents } from './auditEvents';
import { auditVerification } from './auditVerification';
import { dsrApprove, dsrCancel, dsrDecline, dsrExtend, dsrRetry } from './dsrDecisions';
import { dsrExport } from './dsrExport';
import { dsrRequest } from './dsrRequest';
import { dsrRequests } from './dsrRequests';
import { dsrWork } from './dsrWork';
import { geographies } from './geographies';
import { health } from './health';
import { openApiFunction } from './openApi';
import {
  operatorAccessApprove,
  operatorAccessDeny,
  operatorAccessRequest,
  operatorAccessRequests,
  operatorAccessRevoke,
} from './operatorAccess';
import { operatorAccessExpiry } from './operatorAccessExpiry';
import { operatorRecords } from './operatorRecords';
import { packageDownload } from './packageDownload';
import { personalDataEvents } from './personalDataEvents';
import { privacyReport } from './privacyReport';
import { processingRegister } from './processingRegister';
import { terms, termsAcceptanceMe, termsAcceptances, termsVersions } from './terms';
import { requestDeadlines } from './requestDeadlines';
import { requestRecovery } from './requestRecovery';
import { residency, residencyMigration } from './residency';
import { residencyRecovery } from './residencyRecovery';
import { residencyWork } from './residencyWork';
import { restrictions } from './restrictions';
import { retentionPurge } from './retentionPurge';
import { retentionWork } from './retentionWork';
import { retentionPolicy } from './retentionPolicy';
import {
  operatorAccessPolicy,
  tenantAccessApprove,
  tenantAccessDeny,
  tenantAccessRequest,
  tenantAccessRequests,
  tenantAccessRevoke,
} from './tenantAccessRequests';

export const functionRegistry: readonly FunctionDefinition[] = [
  health,
  openApiFunction(() => functionRegistry),
  retentionPolicy,
  geographies,
  dsrRequests,
  dsrRequest,
  dsrApprove,
  dsrDecline,
  dsrCancel,
  dsrExtend,
  dsrRetry,
  dsrExport,
  packageDownload,
  restrictions,
  privacyReport,
  processingRegister,
  terms,
  termsVersions,
  termsAcceptances,
  termsAcceptanceMe,
  auditEvents,
  auditVerification,
  residency,
  residencyMigration,
  adminContactMe,
  adminContactList,
  alertDataRequests,
  alertDataRequest,
  alertDataExport,
  tenantAccessRequests,
  tenantAccessRequest,
  tenantAccessApprove,
  tenantAccessDeny,
  tenantAccessRevoke,
  operatorAccessPolicy,
  operatorAccessRequests,
  operatorAccessRequest,
  operatorAccessApprove,
  operatorAccessDeny,
  operatorAccessRevoke,
  operatorRecords,
  personalDataEvents,
  dsrWork,
  alertDataWork,
  retentionPurge,
  retentionWork,
  requestDeadlines,
  requestRecovery,
  alertRequestRecovery,
  residencyWork,
  residencyRecovery,
  operatorAccessExpiry,
];
