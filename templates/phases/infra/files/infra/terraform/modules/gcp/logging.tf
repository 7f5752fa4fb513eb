# The API's logs (including every inference request) routed to a dedicated log bucket with
# its own retention, plus a log-based metric counting server errors.
resource "google_logging_project_bucket_config" "api" {
  project        = var.gcp_project_id
  location       = "global"
  bucket_id      = "${local.name}-api"
  retention_days = var.log_retention_days
  description    = "Model API logs of ${local.name}"
}

resource "google_logging_project_sink" "api" {
  name                   = "${local.name}-api"
  project                = var.gcp_project_id
  destination            = "logging.googleapis.com/${google_logging_project_bucket_config.api.id}"
  filter                 = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${google_cloud_run_v2_service.api.name}\""
  unique_writer_identity = true
}

resource "google_logging_metric" "api_5xx" {
  name    = "${local.name}-api-5xx"
  project = var.gcp_project_id
  filter  = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${google_cloud_run_v2_service.api.name}\" AND httpRequest.status>=500"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}
