# The environment's whole stack: Cloud KMS, data lake buckets (bronze/silver/gold), Artifact
# Registry, the model API on Cloud Run (private: IAM-authenticated) and a dedicated log bucket.
data "google_project" "this" {
  project_id = var.gcp_project_id
}

data "google_storage_project_service_account" "this" {
  project = var.gcp_project_id
}

resource "random_id" "suffix" {
  byte_length = 3
}

locals {
  name   = "${var.project}-${var.environment}"
  layers = toset(["bronze", "silver", "gold"])
  labels = merge(var.labels, { environment = var.environment })
  # Artifact Registry's service agent, which must be able to use the CMEK key
  registry_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
}

resource "google_kms_key_ring" "this" {
  name     = "${local.name}-${random_id.suffix.hex}"
  project  = var.gcp_project_id
  location = var.region
}

resource "google_kms_crypto_key" "this" {
  name            = "data"
  key_ring        = google_kms_key_ring.this.id
  rotation_period = "7776000s" # 90 days
  labels          = local.labels

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_member" "storage" {
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.this.email_address}"
}

resource "google_kms_crypto_key_iam_member" "registry" {
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.registry_agent
}
