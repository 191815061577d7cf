// One Key Vault of the privacy data service: the tenant key-wrapping keys (SPEC §4) of the tenants of one
// geography, in that geography's region (SPEC §8), with the data-plane roles of the app's managed identity
// on it and its audit log sent to Log Analytics. main.bicep deploys one per open geography; a vault never
// holds the key of a tenant of another geography.
//
// The vault holds key material only, never personal data: the per-subject data keys are stored wrapped,
// next to the data, in the geography's storage account.
//
// Purge protection: a deleted key stays recoverable for 90 days and cannot be purged earlier, by anyone.
// Subject erasure does not depend on it: it destroys the subject's wrapped data key. Passive deletion
// deletes the tenant's key after its data, and a residency migration deletes the tenant's key in the
// source geography's vault once its data keys are re-wrapped under the target geography's vault: kept
// deleted for those 90 days, then purged.

@description('Globally unique vault name: 3-24 letters, digits and hyphens, starting with a letter.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the vault: the region of its geography\'s storage account, inside the geography.')
param location string

@description('Key Vault SKU; premium allows HSM-protected (RSA-HSM) tenant keys.')
@allowed([
  'standard'
  'premium'
])
param skuName string = 'standard'

@description('Principal id (object id) of the managed identity that gets the data-plane roles below.')
param principalId string

@description('Built-in role definition GUIDs granted to principalId on this vault.')
param roleDefinitionIds string[] = [
  '12338af0-0e69-4776-bea7-57ae8d297424' // Key Vault Crypto User (get, wrap, unwrap)
]

@description('Resource id of the Log Analytics workspace that receives the vault\'s audit log.')
param logAnalyticsWorkspaceId string

param tags object = {}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: skuName
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // As for storage: no VNet in this deployment, the app reaches the vault over its public endpoint,
      // authenticated with Entra ID.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleDefinitionId in roleDefinitionIds: {
    name: guid(vault.id, principalId, roleDefinitionId)
    scope: vault
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)
      principalId: principalId
      // Set explicitly so a freshly created identity is not looked up before it has replicated.
      principalType: 'ServicePrincipal'
    }
  }
]

// Every key operation (wrap, unwrap, create, delete) lands in the vault's audit log. The workspace may be
// in another region than the vault; the audit log names keys (`tenant-<tenantId>`) and callers, never
// personal data.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
