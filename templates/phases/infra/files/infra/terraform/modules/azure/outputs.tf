output "resource_group_name" {
  description = "Resource group holding the environment's stack."
  value       = azurerm_resource_group.this.name
}

output "storage_account_name" {
  description = "Data lake storage account; containers bronze, silver and gold."
  value       = azurerm_storage_account.lake.name
}

output "data_containers" {
  description = "Data lake container per layer (bronze, silver, gold)."
  value       = { for layer, container in azurerm_storage_container.layer : layer => container.name }
}

output "key_vault_uri" {
  description = "Key Vault URI for secrets such as the PII hashing salt."
  value       = azurerm_key_vault.this.vault_uri
}

output "registry_login_server" {
  description = "Container registry the model API image is pushed to."
  value       = azurerm_container_registry.this.login_server
}

output "ml_workspace_name" {
  description = "Azure ML workspace (experiment tracking and model registry)."
  value       = azurerm_machine_learning_workspace.this.name
}

output "log_analytics_workspace_id" {
  description = "Log Analytics workspace receiving container, request and storage logs."
  value       = azurerm_log_analytics_workspace.this.id
}
