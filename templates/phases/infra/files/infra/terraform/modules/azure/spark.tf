# The Spark job host of the data pipeline (data.engine: spark): an Azure Databricks workspace
# (Premium, VNet injection, no public IPs, no public network access, CMK for the DBFS root) that
# runs one job cluster per submitted run, and an access connector whose managed identity may
# read and write the lake. Databricks rather than Synapse: Databricks Runtime 17.3 LTS brings
# Spark 4 and Python 3.12, Synapse pools stop at Spark 3.4 / Python 3.10 (older than the project's)
# and, with data exfiltration protection, cannot install the pipeline's packages from PyPI.
# ci/submit-spark.sh uploads the job artifacts to a Unity Catalog volume on the `spark`
# container and submits the run.
variable "spark_host_cidr" {
  description = "CIDR of the Databricks host (\"public\") subnet; /24 from the stack's address space by default."
  type        = string
  default     = null
}

variable "spark_container_cidr" {
  description = "CIDR of the Databricks container (\"private\") subnet; /24 from the stack's address space by default."
  type        = string
  default     = null
}

variable "spark_volume" {
  description = "Unity Catalog volume (path /Volumes/<catalog>/<schema>/<volume>) on the `spark` container, holding the job artifacts; created once (infra/README.md)."
  type        = string
  default     = null
}

locals {
  spark_volume = coalesce(var.spark_volume, "/Volumes/${replace(local.name, "-", "_")}/jobs/artifacts")
  spark_subnets = {
    host      = coalesce(var.spark_host_cidr, cidrsubnet(var.address_space, 8, 10))
    container = coalesce(var.spark_container_cidr, cidrsubnet(var.address_space, 8, 11))
  }
}

resource "azurerm_subnet" "spark" {
  for_each             = local.spark_subnets
  name                 = "snet-databricks-${each.key}"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [each.value]

  delegation {
    name = "databricks"

    service_delegation {
      name = "Microsoft.Databricks/workspaces"
      actions = [
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        "Microsoft.Network/virtualNetworks/subnets/prepareNetworkPolicies/action",
        "Microsoft.Network/virtualNetworks/subnets/unprepareNetworkPolicies/action",
      ]
    }
  }
}

# Databricks adds the rules it needs itself (network intent policies)
resource "azurerm_network_security_group" "spark" {
  for_each            = local.spark_subnets
  name                = "nsg-${local.name}-databricks-${each.key}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_subnet_network_security_group_association" "spark" {
  for_each                  = local.spark_subnets
  subnet_id                 = azurerm_subnet.spark[each.key].id
  network_security_group_id = azurerm_network_security_group.spark[each.key].id
}

resource "azurerm_databricks_workspace" "spark" {
  name                                  = "dbw-${local.name}"
  location                              = azurerm_resource_group.this.location
  resource_group_name                   = azurerm_resource_group.this.name
  managed_resource_group_name           = "rg-${local.name}-databricks"
  sku                                   = "premium"
  public_network_access_enabled         = false
  network_security_group_rules_required = "NoAzureDatabricksRules"
  customer_managed_key_enabled          = true
  infrastructure_encryption_enabled     = true
  tags                                  = local.tags

  custom_parameters {
    no_public_ip                                         = true
    virtual_network_id                                   = azurerm_virtual_network.this.id
    public_subnet_name                                   = azurerm_subnet.spark["host"].name
    private_subnet_name                                  = azurerm_subnet.spark["container"].name
    public_subnet_network_security_group_association_id  = azurerm_subnet_network_security_group_association.spark["host"].id
    private_subnet_network_security_group_association_id = azurerm_subnet_network_security_group_association.spark["container"].id
    storage_account_sku_name                             = "Standard_ZRS"
  }
}

# the DBFS root (workspace system storage) is encrypted with a key of the stack's Key Vault
resource "azurerm_key_vault_key" "databricks" {
  name            = "cmk-databricks"
  key_vault_id    = azurerm_key_vault.this.id
  key_type        = "RSA-HSM"
  key_size        = 3072
  key_opts        = ["unwrapKey", "wrapKey"]
  expiration_date = timeadd(plantimestamp(), "17520h")

  rotation_policy {
    automatic {
      time_before_expiry = "P30D"
    }
    expire_after         = "P2Y"
    notify_before_expiry = "P29D"
  }

  lifecycle {
    ignore_changes = [expiration_date]
  }
}

resource "azurerm_role_assignment" "databricks_key" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Crypto Service Encryption User"
  principal_id         = azurerm_databricks_workspace.spark.storage_account_identity[0].principal_id
}

resource "azurerm_databricks_workspace_root_dbfs_customer_managed_key" "spark" {
  workspace_id     = azurerm_databricks_workspace.spark.id
  key_vault_key_id = azurerm_key_vault_key.databricks.id

  depends_on = [azurerm_role_assignment.databricks_key]
}

# the REST API (job submission, file uploads) is reachable only through this private endpoint
resource "azurerm_private_dns_zone" "databricks" {
  name                = "privatelink.azuredatabricks.net"
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "databricks" {
  name                  = "link-databricks"
  resource_group_name   = azurerm_resource_group.this.name
  private_dns_zone_name = azurerm_private_dns_zone.databricks.name
  virtual_network_id    = azurerm_virtual_network.this.id
  tags                  = local.tags
}

resource "azurerm_private_endpoint" "databricks" {
  name                = "pe-${local.name}-databricks"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "databricks-ui-api"
    private_connection_resource_id = azurerm_databricks_workspace.spark.id
    subresource_names              = ["databricks_ui_api"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "databricks"
    private_dns_zone_ids = [azurerm_private_dns_zone.databricks.id]
  }
}

# Spark reads and writes the lake over abfss://, i.e. the dfs endpoint: a private endpoint for it
resource "azurerm_private_dns_zone" "dfs" {
  name                = "privatelink.dfs.core.windows.net"
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "dfs" {
  name                  = "link-dfs"
  resource_group_name   = azurerm_resource_group.this.name
  private_dns_zone_name = azurerm_private_dns_zone.dfs.name
  virtual_network_id    = azurerm_virtual_network.this.id
  tags                  = local.tags
}

resource "azurerm_private_endpoint" "lake_dfs" {
  name                = "pe-${local.name}-dfs"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "dfs"
    private_connection_resource_id = azurerm_storage_account.lake.id
    subresource_names              = ["dfs"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "dfs"
    private_dns_zone_ids = [azurerm_private_dns_zone.dfs.id]
  }
}

# the identity Unity Catalog uses for the lake (storage credential -> external locations)
resource "azurerm_databricks_access_connector" "spark" {
  name                = "dbac-${local.name}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "spark_lake" {
  scope                = azurerm_storage_account.lake.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_databricks_access_connector.spark.identity[0].principal_id
}

resource "azurerm_storage_container" "spark" {
  #checkov:skip=CKV2_AZURE_21:Blob read/write/delete requests are logged to Log Analytics by the lake_blob diagnostic setting; Storage Insights needs a shared key, which this account disables.
  name                  = "spark"
  storage_account_id    = azurerm_storage_account.lake.id
  container_access_type = "private"
}

output "spark_workspace_url" {
  description = "Databricks workspace host the job is submitted to (CI variable DATABRICKS_HOST)."
  value       = azurerm_databricks_workspace.spark.workspace_url
}

output "spark_access_connector_id" {
  description = "Access connector to register as the Unity Catalog storage credential of the lake."
  value       = azurerm_databricks_access_connector.spark.id
}

output "spark_artifacts" {
  description = "Unity Catalog volume where ci/submit-spark.sh uploads the job bundle and entry file (CI variable SPARK_ARTIFACTS)."
  value       = local.spark_volume
}

output "spark_lake_urls" {
  description = "Storage URL per data layer, passed to the job as MLOPS_LAKE_<LAYER> (CI variable SPARK_LAKE_URLS, as JSON)."
  value       = { for layer in local.layers : layer => "abfss://${layer}@${azurerm_storage_account.lake.name}.dfs.core.windows.net" }
}
