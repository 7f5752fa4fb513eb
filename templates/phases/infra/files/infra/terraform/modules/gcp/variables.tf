variable "project" {
  description = "Project slug (lowercase letters, digits and '-'); prefixes every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.project))
    error_message = "project must be 2-16 characters of lowercase letters, digits and '-', starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (dev, staging, prod, ...): one stack per environment."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be a lowercase slug of at most 20 characters."
  }
}

variable "gcp_project_id" {
  description = "Google Cloud project hosting the stack."
  type        = string
}

variable "region" {
  description = "GCP region of the stack, e.g. europe-west1."
  type        = string
}

variable "labels" {
  description = "Labels applied to every resource (lowercase keys and values)."
  type        = map(string)
  default     = {}
}

variable "image" {
  description = "Initial model API image; deploy.yml rolls out new revisions with `gcloud run deploy`."
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
}

variable "log_retention_days" {
  description = "Retention of the API's log bucket, in days."
  type        = number
  default     = 90
}

variable "noncurrent_version_days" {
  description = "Days a replaced object version is kept in the data buckets before it is deleted."
  type        = number
  default     = 90
}
