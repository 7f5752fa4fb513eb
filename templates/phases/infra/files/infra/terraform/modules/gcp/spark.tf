# The Spark job host of the data pipeline (data.engine: spark): Dataproc Serverless batches, so
# no standing cluster. What a batch needs: its own service account (Dataproc worker, object access
# on the lake, read access to the artifacts), a subnetwork with Private Google Access, a CMEK for
# its disks, and a bucket for the job's artifacts (bundle + entry file). ci/submit-spark.sh
# uploads the artifacts and submits the batch.
variable "spark_subnet_cidr" {
  description = "CIDR of the subnetwork the Dataproc Serverless batches run in (Private Google Access, no external IPs)."
  type        = string
  default     = "10.40.0.0/20"
}

locals {
  spark_member = "serviceAccount:${google_service_account.spark.email}"
  # the batches' own account, and the Google-managed agents encrypting their disks with the CMEK
  spark_key_users = {
    batches  = local.spark_member
    dataproc = "serviceAccount:service-${data.google_project.this.number}@dataproc-accounts.iam.gserviceaccount.com"
    compute  = "serviceAccount:service-${data.google_project.this.number}@compute-system.iam.gserviceaccount.com"
  }
}

resource "google_service_account" "spark" {
  account_id   = "${trimsuffix(substr(local.name, 0, 23), "-")}-spark"
  project      = var.gcp_project_id
  display_name = "Data pipeline Spark batches (${local.name})"
}

resource "google_project_iam_member" "spark_worker" {
  project = var.gcp_project_id
  role    = "roles/dataproc.worker"
  member  = local.spark_member
}

# bronze is append-only for the job (ingest adds partitions); silver and gold are rewritten
resource "google_storage_bucket_iam_member" "spark_bronze_read" {
  bucket = google_storage_bucket.layer["bronze"].name
  role   = "roles/storage.objectViewer"
  member = local.spark_member
}

resource "google_storage_bucket_iam_member" "spark_bronze_append" {
  bucket = google_storage_bucket.layer["bronze"].name
  role   = "roles/storage.objectCreator"
  member = local.spark_member
}

resource "google_storage_bucket_iam_member" "spark_write" {
  for_each = toset(["silver", "gold"])
  bucket   = google_storage_bucket.layer[each.key].name
  role     = "roles/storage.objectUser"
  member   = local.spark_member
}

resource "google_storage_bucket_iam_member" "spark_artifacts" {
  bucket = google_storage_bucket.spark.name
  role   = "roles/storage.objectViewer"
  member = local.spark_member
}

resource "google_kms_crypto_key_iam_member" "spark" {
  for_each      = local.spark_key_users
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value
}

resource "google_storage_bucket" "spark" {
  name                        = "${local.name}-spark-${random_id.suffix.hex}"
  project                     = var.gcp_project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = merge(local.labels, { layer = "spark-artifacts" })

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.this.id
  }

  logging {
    log_bucket        = google_storage_bucket.logs.name
    log_object_prefix = "spark"
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.storage]
}

# Dataproc Serverless needs a subnetwork with Private Google Access whose machines may reach each
# other on every port; the batches get no external IP and reach Google APIs privately.
resource "google_compute_network" "spark" {
  name                    = "${local.name}-spark"
  project                 = var.gcp_project_id
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "spark" {
  name                     = "${local.name}-spark"
  project                  = var.gcp_project_id
  region                   = var.region
  network                  = google_compute_network.spark.id
  ip_cidr_range            = var.spark_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "spark_internal" {
  name      = "${local.name}-spark-internal"
  project   = var.gcp_project_id
  network   = google_compute_network.spark.name
  direction = "INGRESS"
  # Dataproc Serverless requires open communication inside the subnetwork (driver <-> executors)
  source_ranges = [var.spark_subnet_cidr]

  allow {
    protocol = "tcp"
  }

  allow {
    protocol = "udp"
  }

  allow {
    protocol = "icmp"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

output "spark_service_account" {
  description = "Service account the Dataproc Serverless batches run as (CI variable SPARK_SERVICE_ACCOUNT)."
  value       = google_service_account.spark.email
}

output "spark_subnetwork" {
  description = "Subnetwork of the batches, Private Google Access on (CI variable SPARK_SUBNETWORK)."
  value       = google_compute_subnetwork.spark.id
}

output "spark_artifacts" {
  description = "Where ci/submit-spark.sh uploads the job bundle and entry file (CI variable SPARK_ARTIFACTS)."
  value       = "gs://${google_storage_bucket.spark.name}/jobs"
}

output "spark_lake_urls" {
  description = "Storage URL per data layer, passed to the job as MLOPS_LAKE_<LAYER> (CI variable SPARK_LAKE_URLS, as JSON)."
  value       = { for layer, bucket in google_storage_bucket.layer : layer => "gs://${bucket.name}" }
}
