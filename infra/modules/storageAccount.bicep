// One storage account of the privacy data service, with its tables, queues and blob containers, and the
// data-plane roles of the app's managed identity on it. Used for the global account (tenant directory and
// queues), for each geography's account (records, requests, audit, export packages) and for the Functions
// host's own account.
//
// Access is by Microsoft Entra ID only: shared keys (and therefore account SAS and connection strings) are
// disabled. The export-package download links are user delegation SAS, signed with a key the app obtains
// through its identity (Storage Blob Delegator), so they keep working without shared keys.

@description('Globally unique storage account name: 3-24 lowercase letters and digits.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the account. For a geography account this region must lie inside the geography.')
param location string

@description('Redundancy. Standard_ZRS where the region has availability zones, otherwise Standard_LRS. Geo-redundant SKUs are deliberately not offered: the paired region is chosen by Azure, not by the residency rule.')
@allowed([
  'Standard_ZRS'
  'Standard_LRS'
])
param skuName string = 'Standard_ZRS'

@description('Tables to create.')
param tableNames string[] = []

@description('Queues to create.')
param queueNames string[] = []

@description('Blob containers to create (all private).')
param containerNames string[] = []

@description('Days a deleted blob stays recoverable (0 turns blob soft delete off).')
@minValue(0)
@maxValue(365)
param blobDeleteRetentionDays int = 7

@description('Principal id (object id) of the managed identity that gets the data-plane roles below.')
param principalId string

@description('Built-in role definition GUIDs granted to principalId on this account.')
param roleDefinitionIds string[] = [
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
  'db58b8e5-c6ad-4a2a-8342-4190687cbf4a' // Storage Blob Delegator (user delegation SAS for export links)
]

param tags object = {}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // No VNet in this deployment: the app (Flex Consumption, no VNet integration) reaches storage over
      // its public endpoint, authenticated with Entra ID. Add private endpoints and set this to 'Deny' if
      // the app is VNet-integrated.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

// Blob soft delete: on, short (7 days by default); versioning: off.
// Soft delete guards against an operator or bug deleting export packages by mistake. It does not defeat
// erasure: personal data is encrypted per data subject (AES-256-GCM with a per-subject data key wrapped
// by the tenant's key, SPEC §4), and erasing a subject destroys that data key (crypto-shredding). A
// soft-deleted copy of a package or record of an erased subject is therefore unreadable the moment the
// erasure completes, and it disappears for good when the retention window ends. Versioning stays off
// so that overwritten blobs do not pile up as previous versions outside the retention rules (SPEC §6).
var softDeletePolicy = blobDeleteRetentionDays > 0 ? { enabled: true, days: blobDeleteRetentionDays } : { enabled: false }

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: false
    changeFeed: {
      enabled: false
    }
    deleteRetentionPolicy: softDeletePolicy
    containerDeleteRetentionPolicy: softDeletePolicy
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleDefinitionId in roleDefinitionIds: {
    name: guid(account.id, principalId, roleDefinitionId)
    scope: account
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)
      principalId: principalId
      // Set explicitly so a freshly created identity is not looked up before it has replicated.
      principalType: 'ServicePrincipal'
    }
  }
]

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
