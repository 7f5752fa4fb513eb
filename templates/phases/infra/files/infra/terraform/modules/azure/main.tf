# The environment's whole stack: network, data lake (bronze/silver/gold), secrets, registry,
# Azure ML workspace (experiment tracking and model registry) and the model API (Container Apps).
data "azurerm_client_config" "current" {}

resource "random_string" "suffix" {
  length  = 5
  special = false
  upper   = false
}

locals {
  name = "${var.project}-${var.environment}"
  # storage accounts, key vaults and registries: globally unique, alphanumeric, <= 24 characters
  compact = substr(replace("${var.project}${var.environment}", "-", ""), 0, 17)
  unique  = "${local.compact}${random_string.suffix.result}"
  layers  = toset(["bronze", "silver", "gold"])
  tags    = merge(var.tags, { environment = var.environment })
}

resource "azurerm_resource_group" "this" {
  name     = "rg-${local.name}"
  location = var.region
  tags     = local.tags
}

resource "azurerm_log_analytics_workspace" "this" {
  name                = "log-${local.name}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "this" {
  name                = "appi-${local.name}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  workspace_id        = azurerm_log_analytics_workspace.this.id
  application_type    = "web"
  tags                = local.tags
}
