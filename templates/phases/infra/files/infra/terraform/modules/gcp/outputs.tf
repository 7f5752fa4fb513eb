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
