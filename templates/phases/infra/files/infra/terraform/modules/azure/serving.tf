# The model API on Azure Container Apps: pulls from the registry with a managed identity,
# logs to Log Analytics, runs in the stack's virtual network.
variable "api_min_replicas" {
  description = "Minimum replicas of the model API (use at least 2 in production)."
  type        = number
  default     = 1
}

variable "api_max_replicas" {
  description = "Maximum replicas of the model API."
  type        = number
  default     = 3
}

resource "azurerm_user_assigned_identity" "api" {
  name                = "id-${local.name}-api"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "api_pull" {
  scope                = azurerm_container_registry.this.id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.api.principal_id
}

resource "azurerm_role_assignment" "api_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.api.principal_id
}

resource "azurerm_container_app_environment" "this" {
  name                           = "cae-${local.name}"
  location                       = azurerm_resource_group.this.location
  resource_group_name            = azurerm_resource_group.this.name
  log_analytics_workspace_id     = azurerm_log_analytics_workspace.this.id
  infrastructure_subnet_id       = azurerm_subnet.apps.id
  internal_load_balancer_enabled = true
  zone_redundancy_enabled        = true
  tags                           = local.tags
}

resource "azurerm_container_app" "api" {
  name                         = "ca-${local.name}-api"
  container_app_environment_id = azurerm_container_app_environment.this.id
  resource_group_name          = azurerm_resource_group.this.name
  revision_mode                = "Multiple"
  tags                         = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.api.id]
  }

  registry {
    server   = azurerm_container_registry.this.login_server
    identity = azurerm_user_assigned_identity.api.id
  }

  ingress {
    external_enabled = true
    target_port      = 8000
    transport        = "http"

    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }

  template {
    min_replicas = var.api_min_replicas
    max_replicas = var.api_max_replicas

    container {
      name   = "api"
      image  = var.image
      cpu    = 0.5
      memory = "1Gi"

      env {
        name  = "MLOPS_ENV"
        value = var.environment
      }

      liveness_probe {
        transport = "HTTP"
        path      = "/health"
        port      = 8000
      }

      readiness_probe {
        transport = "HTTP"
        path      = "/ready"
        port      = 8000
      }
    }
  }

  lifecycle {
    # the deploy pipeline rolls out new images, shifts traffic between revisions (a platform
    # canary of a new image) and sets the rollout of the image's challenger (SERVING_STRATEGY,
    # SERVING_CHALLENGER_SHARE): terraform leaves those to it
    ignore_changes = [
      template[0].container[0].image,
      template[0].container[0].env,
      ingress[0].traffic_weight,
    ]
  }

  depends_on = [azurerm_role_assignment.api_pull]
}

output "api_name" {
  description = "Container App serving the model API."
  value       = azurerm_container_app.api.name
}

output "api_url" {
  description = "HTTPS URL of the model API."
  value       = "https://${azurerm_container_app.api.ingress[0].fqdn}"
}
