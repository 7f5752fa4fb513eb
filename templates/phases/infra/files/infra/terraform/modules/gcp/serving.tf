# The model API on Cloud Run, running as its own service account that may only read the gold
# layer and pull its image. Invocation needs IAM (var.api_invokers): the API is never public.
variable "api_min_replicas" {
  description = "Minimum number of model API instances (0 lets Cloud Run scale to zero)."
  type        = number
  default     = 1
}

variable "api_max_replicas" {
  description = "Maximum number of model API instances."
  type        = number
  default     = 3
}

variable "api_invokers" {
  description = "IAM members allowed to call the model API (e.g. serviceAccount:client@...). The API is never public."
  type        = list(string)
  default     = []
}

resource "google_service_account" "api" {
  account_id   = "${trimsuffix(substr(local.name, 0, 25), "-")}-api"
  project      = var.gcp_project_id
  display_name = "Model API (${local.name})"
}

resource "google_storage_bucket_iam_member" "api_gold" {
  bucket = google_storage_bucket.layer["gold"].name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.api.email}"
}

resource "google_artifact_registry_repository_iam_member" "api_pull" {
  project    = var.gcp_project_id
  location   = google_artifact_registry_repository.api.location
  repository = google_artifact_registry_repository.api.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.api.email}"
}

resource "google_cloud_run_v2_service" "api" {
  name                = "${local.name}-api"
  project             = var.gcp_project_id
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = true
  labels              = local.labels

  template {
    service_account = google_service_account.api.email
    encryption_key  = google_kms_crypto_key.this.id

    scaling {
      min_instance_count = var.api_min_replicas
      max_instance_count = var.api_max_replicas
    }

    containers {
      image = var.image

      ports {
        container_port = 8000
      }

      env {
        name  = "MLOPS_ENV"
        value = var.environment
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "1Gi"
        }
      }

      startup_probe {
        http_get {
          path = "/ready"
        }
      }

      liveness_probe {
        http_get {
          path = "/health"
        }
      }
    }
  }

  lifecycle {
    # the deploy pipeline rolls out new images, splits traffic between tagged revisions (a
    # platform canary of a new image) and sets the rollout of the image's challenger
    # (SERVING_STRATEGY, SERVING_CHALLENGER_SHARE): terraform leaves those to it
    ignore_changes = [
      template[0].containers[0].image,
      template[0].containers[0].env,
      traffic,
      client,
      client_version,
    ]
  }
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = toset(var.api_invokers)
  project  = var.gcp_project_id
  location = google_cloud_run_v2_service.api.location
  name     = google_cloud_run_v2_service.api.name
  role     = "roles/run.invoker"
  member   = each.value
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
