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
  description = "Azure region of every resource, e.g. westeurope."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource (project, environment, owner, managed_by)."
  type        = map(string)
  default     = {}
}

variable "address_space" {
  description = "CIDR of the stack's virtual network; /16 recommended, split into /24 subnets."
  type        = string
  default     = "10.20.0.0/16"
}

variable "image" {
  description = "Initial model API image; deploy.yml rolls new revisions with `az containerapp update`."
  type        = string
  default     = "mcr.microsoft.com/k8se/quickstart:latest"
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace (inference logs, container logs), in days."
  type        = number
  default     = 90
}

variable "data_retention_days" {
  description = "Soft-delete retention of blobs and containers in the data lake, in days."
  type        = number
  default     = 30
}

variable "paired_region" {
  description = "Second region the container registry replicates to (Azure paired region of `region`)."
  type        = string
}
