# The data lake: one storage account (hierarchical namespace) with a container per layer.
# Encrypted with a customer-managed key, no shared keys, no public network access.
resource "azurerm_user_assigned_identity" "storage" {
  name                = "id-${local.name}-storage"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "storage_key" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Crypto Service Encryption User"
  principal_id         = azurerm_user_assigned_identity.storage.principal_id
}

resource "azurerm_storage_account" "lake" {
  name                              = "st${local.unique}"
  resource_group_name               = azurerm_resource_group.this.name
  location                          = azurerm_resource_group.this.location
  account_tier                      = "Standard"
  account_kind                      = "StorageV2"
  account_replication_type          = "GZRS"
  is_hns_enabled                    = true
  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  public_network_access_enabled     = false
  local_user_enabled                = false
  infrastructure_encryption_enabled = true
  default_to_oauth_authentication   = true
  tags                              = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.storage.id]
  }

  customer_managed_key {
    key_vault_key_id          = azurerm_key_vault_key.storage.versionless_id
    user_assigned_identity_id = azurerm_user_assigned_identity.storage.id
  }

  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices", "Logging", "Metrics"]
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    delete_retention_policy {
      days = var.data_retention_days
    }
    container_delete_retention_policy {
      days = var.data_retention_days
    }
  }

  queue_properties {
    logging {
      delete                = true
      read                  = true
      write                 = true
      version               = "1.0"
      retention_policy_days = var.log_retention_days
    }
  }

  depends_on = [azurerm_role_assignment.storage_key]
}

resource "azurerm_storage_container" "layer" {
  #checkov:skip=CKV2_AZURE_21:Blob read/write/delete requests are logged to Log Analytics by the lake_blob diagnostic setting; Storage Insights needs a shared key, which this account disables.
  for_each              = local.layers
  name                  = each.key
  storage_account_id    = azurerm_storage_account.lake.id
  container_access_type = "private"
}

resource "azurerm_monitor_diagnostic_setting" "lake_blob" {
  name                       = "diag-blob"
  target_resource_id         = "${azurerm_storage_account.lake.id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category_group = "allLogs"
  }

  metric {
    category = "Transaction"
  }
}

resource "azurerm_private_endpoint" "lake_blob" {
  name                = "pe-${local.name}-blob"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "blob"
    private_connection_resource_id = azurerm_storage_account.lake.id
    subresource_names              = ["blob"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "blob"
    private_dns_zone_ids = [azurerm_private_dns_zone.this["blob"].id]
  }
}

# Azure ML cannot use a hierarchical-namespace account as its workspace storage: it gets its own
# account, hardened the same way (customer-managed key, no shared keys, private endpoints only).
resource "azurerm_storage_account" "ml" {
  name                              = "stml${local.unique}"
  resource_group_name               = azurerm_resource_group.this.name
  location                          = azurerm_resource_group.this.location
  account_tier                      = "Standard"
  account_kind                      = "StorageV2"
  account_replication_type          = "GZRS"
  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  public_network_access_enabled     = false
  local_user_enabled                = false
  infrastructure_encryption_enabled = true
  default_to_oauth_authentication   = true
  tags                              = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.storage.id]
  }

  customer_managed_key {
    key_vault_key_id          = azurerm_key_vault_key.storage.versionless_id
    user_assigned_identity_id = azurerm_user_assigned_identity.storage.id
  }

  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices", "Logging", "Metrics"]
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.data_retention_days
    }
    container_delete_retention_policy {
      days = var.data_retention_days
    }
  }

  queue_properties {
    logging {
      delete                = true
      read                  = true
      write                 = true
      version               = "1.0"
      retention_policy_days = var.log_retention_days
    }
  }

  depends_on = [azurerm_role_assignment.storage_key]
}

resource "azurerm_monitor_diagnostic_setting" "ml_blob" {
  name                       = "diag-blob"
  target_resource_id         = "${azurerm_storage_account.ml.id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category_group = "allLogs"
  }

  metric {
    category = "Transaction"
  }
}

resource "azurerm_private_endpoint" "ml_storage" {
  for_each            = toset(["blob", "file"])
  name                = "pe-${local.name}-ml-${each.key}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "ml-${each.key}"
    private_connection_resource_id = azurerm_storage_account.ml.id
    subresource_names              = [each.key]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = each.key
    private_dns_zone_ids = [azurerm_private_dns_zone.this[each.key].id]
  }
}
