variable "project" {
  description = "Project slug (lowercase letters, digits and '-'); prefixes every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,15}$", var.project))
    error_message = "project must be 2-16 characters of lowercase letters, digits and '-'."
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

variable "region" {
  description = "AWS region of the stack, e.g. eu-west-1."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource (the provider's default_tags carry them too)."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "CIDR of the stack's VPC; split into two public and two private subnets."
  type        = string
  default     = "10.30.0.0/16"
}

variable "image" {
  description = "Initial model API image; deploy.yml registers new task definitions with new images."
  type        = string
  default     = "public.ecr.aws/docker/library/python:3.12-slim"
}

variable "log_retention_days" {
  description = "Retention of CloudWatch log groups (API, VPC flow logs, WAF), in days."
  type        = number
  default     = 365
}

variable "noncurrent_version_days" {
  description = "Days a replaced object version is kept in the data buckets before expiring."
  type        = number
  default     = 90
}
