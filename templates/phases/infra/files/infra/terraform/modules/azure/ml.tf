# Azure ML workspace: experiment tracking (MLflow-compatible) and the model registry.
resource "azurerm_machine_learning_workspace" "this" {
  name                          = "mlw-${local.name}"
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  application_insights_id       = azurerm_application_insights.this.id
  key_vault_id                  = azurerm_key_vault.this.id
  storage_account_id            = azurerm_storage_account.ml.id
  container_registry_id         = azurerm_container_registry.this.id
  public_network_access_enabled = false
  high_business_impact          = true
  tags                          = local.tags

  identity {
    type = "SystemAssigned"
  }

  managed_network {
    isolation_mode = "AllowOnlyApprovedOutbound"
  }
}

resource "azurerm_private_endpoint" "ml" {
  name                = "pe-${local.name}-ml"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "amlworkspace"
    private_connection_resource_id = azurerm_machine_learning_workspace.this.id
    subresource_names              = ["amlworkspace"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name = "amlworkspace"
    private_dns_zone_ids = [
      azurerm_private_dns_zone.this["ml"].id,
      azurerm_private_dns_zone.this["notebooks"].id,
    ]
  }
}
