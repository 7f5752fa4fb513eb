output "data_buckets" {
  description = "GCS bucket per data layer (bronze, silver, gold)."
  value       = { for layer, bucket in google_storage_bucket.layer : layer => bucket.name }
}

output "kms_key_id" {
  description = "Cloud KMS key encrypting data and images."
  value       = google_kms_crypto_key.this.id
}

output "registry_url" {
  description = "Artifact Registry repository of the model API image."
  value       = "${var.region}-docker.pkg.dev/${var.gcp_project_id}/${google_artifact_registry_repository.api.repository_id}"
}

output "api_name" {
  description = "Cloud Run service of the model API."
  value       = google_cloud_run_v2_service.api.name
}

output "api_url" {
  description = "HTTPS URL of the model API (callers need roles/run.invoker)."
  value       = google_cloud_run_v2_service.api.uri
}

output "api_service_account" {
  description = "Service account the model API runs as."
  value       = google_service_account.api.email
}
