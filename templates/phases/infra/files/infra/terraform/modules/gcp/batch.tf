# Batch scoring (serving.mode: batch) as a Cloud Run job instead of an API service, run by Cloud
# Scheduler on var.score_schedule: the batch image (`python -m <package>.serving.job`) reads
# gold/features.parquet and writes gold/predictions/predictions-<time>.parquet. It runs as its own
# service account, which may only read gold, add predictions and pull its image.
variable "score_schedule" {
  description = "When the batch scoring job runs: a cron expression in var.score_time_zone."
  type        = string
  default     = "0 3 * * *"
}

variable "score_time_zone" {
  description = "Time zone of var.score_schedule (tz database name)."
  type        = string
  default     = "Etc/UTC"
}

resource "google_service_account" "score" {
  account_id   = "${trimsuffix(substr(local.name, 0, 23), "-")}-score"
  project      = var.gcp_project_id
  display_name = "Batch scoring job (${local.name})"
}

resource "google_storage_bucket_iam_member" "score_gold_read" {
  bucket = google_storage_bucket.layer["gold"].name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.score.email}"
}

# objectCreator adds objects and never overwrites or deletes one: every run writes a new file
resource "google_storage_bucket_iam_member" "score_predictions" {
  bucket = google_storage_bucket.layer["gold"].name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_service_account.score.email}"
}

resource "google_artifact_registry_repository_iam_member" "score_pull" {
  project    = var.gcp_project_id
  location   = google_artifact_registry_repository.api.location
  repository = google_artifact_registry_repository.api.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.score.email}"
}

resource "google_cloud_run_v2_job" "score" {
  name                = "${local.name}-score"
  project             = var.gcp_project_id
  location            = var.region
  deletion_protection = true
  labels              = local.labels

  template {
    task_count = 1

    template {
      service_account = google_service_account.score.email
      encryption_key  = google_kms_crypto_key.this.id
      max_retries     = 1
      timeout         = "3600s"

      containers {
        image = var.image

        env {
          name  = "MLOPS_ENV"
          value = var.environment
        }

        env {
          name  = "SCORE_INPUT_URL"
          value = "gs://${google_storage_bucket.layer["gold"].name}/features.parquet"
        }

        env {
          name  = "SCORE_OUTPUT_URL"
          value = "gs://${google_storage_bucket.layer["gold"].name}/predictions"
        }

        resources {
          limits = {
            cpu    = "1"
            memory = "4Gi"
          }
        }
      }
    }
  }

  lifecycle {
    # the deploy pipeline rolls out new images with `gcloud run jobs update`
    ignore_changes = [template[0].template[0].containers[0].image, client, client_version]
  }
}

# Cloud Scheduler starts the job through the Cloud Run API as a service account that may only
# run this job
resource "google_service_account" "scheduler" {
  account_id   = "${trimsuffix(substr(local.name, 0, 21), "-")}-sched"
  project      = var.gcp_project_id
  display_name = "Scheduler of the batch scoring job (${local.name})"
}

resource "google_cloud_run_v2_job_iam_member" "scheduler" {
  project  = var.gcp_project_id
  location = google_cloud_run_v2_job.score.location
  name     = google_cloud_run_v2_job.score.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_scheduler_job" "score" {
  name        = "${local.name}-score"
  project     = var.gcp_project_id
  region      = var.region
  description = "Runs the batch scoring job of ${local.name}"
  schedule    = var.score_schedule
  time_zone   = var.score_time_zone

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.gcp_project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.score.name}:run"

    oauth_token {
      service_account_email = google_service_account.scheduler.email
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler]
}

output "job_name" {
  description = "Cloud Run job of the batch scoring (CI variable JOB_NAME)."
  value       = google_cloud_run_v2_job.score.name
}

output "job_service_account" {
  description = "Service account the batch scoring job runs as."
  value       = google_service_account.score.email
}
