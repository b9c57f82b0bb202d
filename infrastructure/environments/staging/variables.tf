variable "region" {
  description = "AWS region of the staging deployment (the primary region)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "lambda_zip_dir" {
  description = "Folder of the six function zips built by scripts/package; null: the repository's target/lambda-zips."
  type        = string
  default     = null

  validation {
    condition     = var.lambda_zip_dir == null || length(trimspace(coalesce(var.lambda_zip_dir, " "))) > 0
    error_message = "lambda_zip_dir must be a folder path (or null for target/lambda-zips)."
  }
}

variable "lambda_architecture" {
  description = "arm64, or x86_64 when scripts/package fell back to it (it says so)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose `staging` environment may assume ci-rotate and ci-deploy (and whose pull requests ci-plan)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "replica_region" {
  description = "Second region: replicas of the KMS key and of every secret (disaster recovery; rotation stays in the primary)."
  type        = string
  default     = "us-west-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.replica_region))
    error_message = "replica_region must be an AWS region name such as us-west-2."
  }
}

variable "alarm_email_addresses" {
  description = "On-call addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_email_addresses : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", a))])
    error_message = "alarm_email_addresses must be e-mail addresses."
  }
}

variable "terraform_state_bucket" {
  description = "The backend's S3 bucket (the deploy workflow sets TF_VAR_terraform_state_bucket): ci-plan reads and ci-deploy writes exactly this deployment's state object there. Null: the CI roles get no state access."
  type        = string
  default     = null
}

variable "terraform_state_key" {
  description = "The backend's state key (the deploy workflow uses rotor/staging.tfstate)."
  type        = string
  default     = null
}
