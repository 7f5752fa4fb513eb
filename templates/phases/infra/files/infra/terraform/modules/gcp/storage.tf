# Data lake: one bucket per layer; CMEK-encrypted, versioned, uniform access, never public,
# access-logged into the log bucket.
resource "google_storage_bucket" "logs" {
  #checkov:skip=CKV_GCP_62:This is the access-log target bucket; logging it into itself would loop.
  name                        = "${local.name}-logs-${random_id.suffix.hex}"
  project                     = var.gcp_project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = local.labels

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.this.id
  }

  lifecycle_rule {
    condition {
      age = var.log_retention_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.storage]
}

resource "google_storage_bucket" "layer" {
  for_each                    = local.layers
  name                        = "${local.name}-${each.key}-${random_id.suffix.hex}"
  project                     = var.gcp_project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = merge(local.labels, { layer = each.key })

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.this.id
  }

  logging {
    log_bucket        = google_storage_bucket.logs.name
    log_object_prefix = each.key
  }

  soft_delete_policy {
    retention_duration_seconds = 604800
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.storage]
}
