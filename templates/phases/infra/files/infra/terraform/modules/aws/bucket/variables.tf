variable "name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting every object (SSE-KMS with a bucket key)."
  type        = string
}

variable "log_bucket" {
  description = "Bucket receiving this bucket's server access logs."
  type        = string
}

variable "noncurrent_version_days" {
  description = "Days a replaced object version is kept before it expires."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags of the bucket."
  type        = map(string)
  default     = {}
}
