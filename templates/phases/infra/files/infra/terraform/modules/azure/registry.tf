# Container registry for the model API image: Premium for private endpoints, no admin user.
resource "azurerm_container_registry" "this" {
  name                          = "cr${local.unique}"
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  sku                           = "Premium"
  admin_enabled                 = false
  public_network_access_enabled = false
  anonymous_pull_enabled        = false
  data_endpoint_enabled         = true
  quarantine_policy_enabled     = true
  zone_redundancy_enabled       = true
  network_rule_bypass_option    = "AzureServices"
  retention_policy_in_days      = 30
  trust_policy_enabled          = true
  tags                          = local.tags

  georeplications {
    location                = var.paired_region
    zone_redundancy_enabled = true
    tags                    = local.tags
  }
}

resource "azurerm_private_endpoint" "registry" {
  name                = "pe-${local.name}-registry"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "registry"
    private_connection_resource_id = azurerm_container_registry.this.id
    subresource_names              = ["registry"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "registry"
    private_dns_zone_ids = [azurerm_private_dns_zone.this["registry"].id]
  }
}
