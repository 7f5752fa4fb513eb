# Batch scoring (serving.mode: batch) as a scheduled Container Apps job instead of an API: the
# batch image (`python -m <package>.serving.job`) runs on var.score_schedule, reads
# gold/features.parquet and writes gold/predictions/predictions-<time>.parquet with its managed
# identity (pull from the registry, read and write the gold container, nothing more).
variable "score_schedule" {
  description = "When the batch scoring job runs: a cron expression (UTC)."
  type        = string
  default     = "0 3 * * *"
}

resource "azurerm_user_assigned_identity" "score" {
  name                = "id-${local.name}-score"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "score_pull" {
  scope                = azurerm_container_registry.this.id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.score.principal_id
}

resource "azurerm_role_assignment" "score_gold" {
  scope                = azurerm_storage_container.layer["gold"].resource_manager_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.score.principal_id
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

resource "azurerm_container_app_job" "score" {
  name                         = "caj-${local.name}-score"
  location                     = azurerm_resource_group.this.location
  resource_group_name          = azurerm_resource_group.this.name
  container_app_environment_id = azurerm_container_app_environment.this.id
  replica_timeout_in_seconds   = 3600
  replica_retry_limit          = 1
  tags                         = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.score.id]
  }

  registry {
    server   = azurerm_container_registry.this.login_server
    identity = azurerm_user_assigned_identity.score.id
  }

  schedule_trigger_config {
    cron_expression          = var.score_schedule
    parallelism              = 1
    replica_completion_count = 1
  }

  template {
    container {
      name   = "score"
      image  = var.image
      cpu    = 1
      memory = "2Gi"

      env {
        name  = "MLOPS_ENV"
        value = var.environment
      }

      env {
        name  = "SCORE_INPUT_URL"
        value = "abfs://gold@${azurerm_storage_account.lake.name}.dfs.core.windows.net/features.parquet"
      }

      env {
        name  = "SCORE_OUTPUT_URL"
        value = "abfs://gold@${azurerm_storage_account.lake.name}.dfs.core.windows.net/predictions"
      }

      # adlfs signs in with this managed identity (DefaultAzureCredential)
      env {
        name  = "AZURE_CLIENT_ID"
        value = azurerm_user_assigned_identity.score.client_id
      }
    }
  }

  lifecycle {
    # the deploy pipeline rolls out new images with `az containerapp job update`
    ignore_changes = [template[0].container[0].image]
  }

  depends_on = [azurerm_role_assignment.score_pull]
}

output "job_name" {
  description = "Container Apps job of the batch scoring (CI variable JOB_NAME)."
  value       = azurerm_container_app_job.score.name
}
