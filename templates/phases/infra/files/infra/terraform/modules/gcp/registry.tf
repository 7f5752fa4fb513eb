# Artifact Registry repository of the model API image: CMEK-encrypted, immutable tags.
resource "google_artifact_registry_repository" "api" {
  repository_id = "${local.name}-api"
  project       = var.gcp_project_id
  location      = var.region
  format        = "DOCKER"
  description   = "Model API images of ${local.name}"
  kms_key_name  = google_kms_crypto_key.this.id
  labels        = local.labels

  docker_config {
    immutable_tags = true
  }

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"

    most_recent_versions {
      keep_count = 50
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.registry]
}
