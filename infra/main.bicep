// Azure deployment of the privacy data service (SPEC §1, §8, §10).
//
//   az deployment group create -g <rg> -f infra/main.bicep -p @infra/main.parameters.example.json
//
// Hosting: Azure Functions on the Flex Consumption plan (serverfarm SKU FC1, Linux, Node.js 22), chosen
// over the classic Linux Consumption plan (Y1) because Flex runs entirely on managed identity (the
// deployment package container is read with the app's identity, no content share, no connection string)
// and Linux Consumption is being retired. Flex is offered in a subset of regions: `location` must be one
// of them (for example eastus, westeurope, southeastasia, australiaeast, swedencentral, uksouth).
//
// No secrets: every data-plane call (storage, Key Vault, Application Insights ingestion) authenticates as
// one user-assigned managed identity through Microsoft Entra ID. Storage accounts refuse shared keys and
// Application Insights refuses instrumentation-key-only ingestion.
//
// Residency (SPEC §8): one storage account and one Key Vault per geography, both in a region inside that
// geography. The app learns which geographies are open from its settings (a geography is open exactly
// when its STORAGE_<CODE> setting exists; KEY_VAULT_URL_<CODE> names its vault) and reads each tenant's
// geography from the tenant directory in the global account.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------------

@description('A geography of the service (SPEC §8).')
type geographyCode = 'NA' | 'EU' | 'APAC' | 'AU' | 'IN' | 'CH'

@description('An open geography: its code and the Azure region that holds its data.')
type geographyConfig = {
  @description('Geography code; becomes the app settings STORAGE_<code>__accountName and KEY_VAULT_URL_<code>.')
  code: geographyCode

  @description('Azure region of the geography\'s storage account and Key Vault. It must lie inside the geography (NA: a US region, EU: an EU/EFTA region, CH: a Swiss region, ...).')
  location: string

  @description('Storage redundancy; Standard_ZRS (default) where the region has availability zones, otherwise Standard_LRS.')
  skuName: ('Standard_ZRS' | 'Standard_LRS')?
}

// ---------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------

@description('Prefix of every resource name: 3-11 lowercase letters or digits, starting with a letter. Storage account, Key Vault and function app names are derived from it plus a hash of the resource group, so they are globally unique but stable across redeployments.')
@minLength(3)
@maxLength(11)
param namePrefix string

@description('Region of the function app, its host storage and monitoring. Must offer Flex Consumption.')
param location string = resourceGroup().location

@description('Open geographies, one storage account and one Key Vault each. Never remove a geography that still holds tenants: migrate them first (POST /api/tenants/{tid}/residency/migration).')
@minLength(1)
param geographies geographyConfig[] = [
  { code: 'NA', location: 'eastus' }
  { code: 'EU', location: 'westeurope' }
  { code: 'APAC', location: 'southeastasia' }
]

@description('Region of the global account (tenant directory and queues).')
param globalLocation string = location

@description('Expected "aud" claim of access tokens. For Entra ID v2.0 access tokens this is the application (client) id of the API app registration.')
param authAudience string

@description('Issuer template; {tenantid} is replaced by the token\'s tid claim.')
param authIssuerTemplate string = 'https://login.microsoftonline.com/{tenantid}/v2.0'

@description('JWKS of the token issuer (Entra ID signing keys are the same for every tenant).')
param authJwksUri string = 'https://login.microsoftonline.com/common/discovery/v2.0/keys'

@description('The service provider\'s own Entra tenant: only its users can be operators (SPEC §9). Empty: no one is.')
param operatorTenantId string = ''

@description('Conditional Access authentication context operators\' tokens must carry in acrs (privileged access workstations).')
param operatorAuthContext string = 'c1'

@description('Redundancy of the global storage account.')
@allowed([
  'Standard_ZRS'
  'Standard_LRS'
])
param globalStorageSkuName string = 'Standard_ZRS'

@description('Redundancy of the Functions host storage account (leases, timer schedules, deployment package).')
@allowed([
  'Standard_ZRS'
  'Standard_LRS'
])
param hostStorageSkuName string = 'Standard_ZRS'

@description('SKU of every geography\'s Key Vault; premium allows HSM-protected (RSA-HSM) tenant keys.')
@allowed([
  'standard'
  'premium'
])
param keyVaultSkuName string = 'standard'

@description('Also grant the app "Key Vault Crypto Officer" on every geography\'s vault so that it can create a tenant key-wrapping key when a tenant is provisioned (or moved into the geography), and delete it when the tenant\'s data is purged (passive deletion) or the tenant has moved to another geography. Set to false if tenant keys are created and deleted out of band; the app then only gets "Key Vault Crypto User" (get, wrap, unwrap).')
param appCreatesTenantKeys bool = true

@description('Upper bound of Flex Consumption instances.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory per Flex Consumption instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Allow basic-auth (publishing profile) deployment to the SCM site. Off: deploy with an Entra ID login (Azure CLI / Core Tools). Turn on only for tooling that needs a publishing profile.')
param allowScmBasicAuth bool = false

@description('Days Log Analytics keeps telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Tags applied to every resource.')
param tags object = {}

// ---------------------------------------------------------------------------------------------------
// Names and constants
// ---------------------------------------------------------------------------------------------------

var prefix = toLower(namePrefix)
var nameSuffix = take(uniqueString(resourceGroup().id, prefix), 8)

// Storage account names: prefix (<=11) + label (<=4) + suffix (8) <= 23 characters.
// Key Vault names (3-24 letters, digits and hyphens, starting with a letter): prefix (<=11) + 'kv' + the
// first 7 characters of the suffix + geography code (<=4, APAC) <= 24 characters, for example
// 'privacykv1a2b3c4apac'. The code comes last, the hash is cut to 7 characters to make room for it.
var hostStorageName = '${prefix}host${nameSuffix}'
var globalStorageName = '${prefix}glob${nameSuffix}'
var functionAppName = '${prefix}-func-${nameSuffix}'
var deploymentContainerName = 'app-package'

// Each open geography's storage account and Key Vault, both in the geography's region.
var geographyAccounts = [
  for geo in geographies: {
    code: geo.code
    location: geo.location
    skuName: geo.?skuName ?? 'Standard_ZRS'
    accountName: '${prefix}${toLower(geo.code)}${nameSuffix}'
    keyVaultName: '${prefix}kv${take(nameSuffix, 7)}${toLower(geo.code)}'
  }
]

// Built-in role definitions.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424'
  keyVaultCryptoOfficer: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// Roles of the app on the global and geography accounts: tables, queues, blobs, and user delegation
// keys (the read-only SAS links to export packages are user delegation SAS).
var dataAccountRoles = [
  roles.storageTableDataContributor
  roles.storageQueueDataContributor
  roles.storageBlobDataContributor
  roles.storageBlobDelegator
]

// Roles of the app on each geography's vault: Crypto User (get, wrap, unwrap) always, Crypto Officer
// (create and delete tenant keys) only with appCreatesTenantKeys.
var keyVaultRoles = appCreatesTenantKeys ? [roles.keyVaultCryptoUser, roles.keyVaultCryptoOfficer] : [roles.keyVaultCryptoUser]

// ---------------------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------------------

// The app's only identity. Its client id is AZURE_CLIENT_ID (DefaultAzureCredential in the code) and
// the __clientId of the identity-based connections the Functions host itself uses.
resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-id-${nameSuffix}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------------

// The Functions host's own account (AzureWebJobsStorage): host locks, timer schedule status, and the
// Flex Consumption deployment package. No personal data.
module hostStorage 'modules/storageAccount.bicep' = {
  name: 'storage-host-${nameSuffix}'
  params: {
    name: hostStorageName
    location: location
    skuName: hostStorageSkuName
    containerNames: [deploymentContainerName]
    principalId: appIdentity.properties.principalId
    roleDefinitionIds: [
      roles.storageBlobDataOwner
      roles.storageQueueDataContributor
      roles.storageTableDataContributor
    ]
    tags: tags
  }
}

// The global account: the tenant directory (which geography each tenant lives in) and the work queues.
// Personal-data events pass through `personal-data-events` (and its poison queue) on their way to the
// tenant's geography, so choose globalLocation with that in mind.
module globalStorage 'modules/storageAccount.bicep' = {
  name: 'storage-global-${nameSuffix}'
  params: {
    name: globalStorageName
    location: globalLocation
    skuName: globalStorageSkuName
    tableNames: [
      'tenants'
      'migrations'
      'operatorAccessOpen'
    ]
    queueNames: [
      'personal-data-events'
      'personal-data-events-poison'
      'dsr-work'
      'dsr-work-poison'
      'retention-work'
      'retention-work-poison'
      'residency-work'
      'residency-work-poison'
      'alert-data-work'
      'alert-data-work-poison'
    ]
    principalId: appIdentity.properties.principalId
    roleDefinitionIds: dataAccountRoles
    tags: union(tags, { scope: 'global' })
  }
}

// One account per geography, in that geography's region: records, requests, audit events, idempotency
// keys and export packages of the tenants assigned to it, and nothing else.
module geographyStorage 'modules/storageAccount.bicep' = [
  for geo in geographyAccounts: {
    name: 'storage-${toLower(geo.code)}-${nameSuffix}'
    params: {
      name: geo.accountName
      location: geo.location
      skuName: geo.skuName
      // The names of shared/storage/names.ts (TABLES, CONTAINERS); the app also creates them on first use.
      tableNames: [
        'requests'
        'audit'
        'idempotency'
        'records'
        'recordLookup'
        'tenantSecrets'
        'restrictions'
        'expiry'
        'operatorAccess'
        'alertDataRequests'
      ]
      containerNames: [
        'export-packages'
        'poisoned-events'
      ]
      principalId: appIdentity.properties.principalId
      roleDefinitionIds: dataAccountRoles
      tags: union(tags, { geography: geo.code })
    }
  }
]

// ---------------------------------------------------------------------------------------------------
// Key Vault: tenant key-wrapping keys (SPEC §4)
// ---------------------------------------------------------------------------------------------------

// One vault per geography, in that geography's region (the region of its storage account): one
// key-wrapping key per tenant of the geography, and no other geography's keys. The per-subject data keys
// are stored wrapped, next to the data, in the tenant's geography; a vault holds key material only, never
// personal data. A tenant moved to another geography has its data keys re-wrapped under a key in the
// target geography's vault, and its key in the source geography's vault is then deleted. RBAC
// authorization, soft delete and purge protection (90 days), the app's crypto roles and the audit log to
// Log Analytics are set up in the module.
module geographyKeyVault 'modules/keyVault.bicep' = [
  for geo in geographyAccounts: {
    name: 'keyvault-${toLower(geo.code)}-${nameSuffix}'
    params: {
      name: geo.keyVaultName
      location: geo.location
      skuName: keyVaultSkuName
      principalId: appIdentity.properties.principalId
      roleDefinitionIds: keyVaultRoles
      logAnalyticsWorkspaceId: logAnalytics.id
      tags: union(tags, { geography: geo.code })
    }
  }
]

// ---------------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------------

// Telemetry stays in the app's region. The code logs ids and counts, never personal data.
resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: '${prefix}-log-${nameSuffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${prefix}-appi-${nameSuffix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    // Entra ID-authenticated ingestion only (APPLICATIONINSIGHTS_AUTHENTICATION_STRING below).
    DisableLocalAuth: true
  }
}

resource appInsightsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appIdentity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------------------------------------------
// Function app (Flex Consumption)
// ---------------------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${prefix}-plan-${nameSuffix}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${appIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.outputs.blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: appIdentity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
  // The app must not start before its identity may reach storage, the Key Vaults and Application Insights.
  dependsOn: [
    globalStorage
    geographyStorage
    geographyKeyVault
    appInsightsPublisher
  ]
}

// App settings. Flex Consumption sets the runtime in functionAppConfig, so FUNCTIONS_EXTENSION_VERSION
// and FUNCTIONS_WORKER_RUNTIME are not set here (Flex rejects them).
var baseAppSettings = {
  // Host storage, identity-based.
  AzureWebJobsStorage__accountName: hostStorageName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: appIdentity.properties.clientId

  // Telemetry, ingested with the identity (local auth is disabled on the component).
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${appIdentity.properties.clientId};Authorization=AAD'

  // DefaultAzureCredential in the code picks the user-assigned identity by this client id.
  AZURE_CLIENT_ID: appIdentity.properties.clientId

  // Global account. The queue trigger binds to the connection named STORAGE_GLOBAL, so the host needs
  // the credential, client id and queue endpoint as well; the code itself reads __accountName.
  STORAGE_GLOBAL__accountName: globalStorageName
  STORAGE_GLOBAL__credential: 'managedidentity'
  STORAGE_GLOBAL__clientId: appIdentity.properties.clientId
  STORAGE_GLOBAL__queueServiceUri: globalStorage.outputs.queueEndpoint

  // Token validation (SPEC §2).
  AUTH_AUDIENCE: authAudience
  AUTH_ISSUER_TEMPLATE: authIssuerTemplate
  AUTH_JWKS_URI: authJwksUri
  AUTH_CLOCK_SKEW_SECONDS: '300'

  // Operators (SPEC §9): the provider's tenant and the privileged-workstation authentication context.
  OPERATOR_AUTH_CONTEXT: operatorAuthContext

  // Tenant key-wrapping keys (SPEC §4), in each geography's own vault (KEY_VAULT_URL_<CODE> below).
  KEY_PROVIDER: 'keyvault'
}

// STORAGE_<CODE>__accountName for each open geography: the presence of this setting is what opens a
// geography to the app (SPEC §8).
var geographyAppSettings = toObject(geographyAccounts, geo => 'STORAGE_${geo.code}__accountName', geo => geo.accountName)

// KEY_VAULT_URL_<CODE> for each open geography: the URI of that geography's vault, the only vault the app
// uses for the keys of the geography's tenants (SPEC §4, §8). The URI is built from the vault name the way
// Azure forms the vault's vaultUri ('https://<name>.vault.azure.net/' in the public cloud), because a
// lambda may not index the geographyKeyVault module collection (BCP247). The function app depends on
// those modules, so the vaults exist before these settings are written.
var keyVaultAppSettings = toObject(geographyAccounts, geo => 'KEY_VAULT_URL_${geo.code}', geo => 'https://${geo.keyVaultName}${environment().suffixes.keyvaultDns}/')

// OPERATOR_TENANT_ID only when given: without it the app has no operators at all.
var operatorAppSettings = empty(operatorTenantId) ? {} : { OPERATOR_TENANT_ID: operatorTenantId }

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(baseAppSettings, operatorAppSettings, geographyAppSettings, keyVaultAppSettings)
  // Writes to one site are serialised to avoid conflicting concurrent updates of the app.
  dependsOn: [
    scmBasicAuth
  ]
}

// Deployment with Entra ID only: FTP is never allowed; SCM basic auth only if explicitly requested.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: allowScmBasicAuth
  }
  dependsOn: [
    ftpBasicAuth
  ]
}

// ---------------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------------

output functionAppName string = functionApp.name
output functionAppHostName string = functionApp.properties.defaultHostName
output managedIdentityClientId string = appIdentity.properties.clientId
output hostStorageAccountName string = hostStorageName
output globalStorageAccountName string = globalStorageName

@description('Storage account name of each open geography, by geography code.')
output geographyStorageAccountNames object = toObject(geographyAccounts, geo => geo.code, geo => geo.accountName)

@description('Key Vault of each open geography: geography code, vault name and vault URI (the value of KEY_VAULT_URL_<code>).')
output geographyKeyVaults array = [
  for (geo, i) in geographyAccounts: {
    code: geo.code
    name: geographyKeyVault[i].outputs.name
    uri: geographyKeyVault[i].outputs.uri
  }
]
