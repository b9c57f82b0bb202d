variable "region" {
  description = "AWS region of the development deployment."
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
  description = "owner/name of the GitHub repository whose `development` environment may assume ci-rotate and ci-deploy (and whose pull requests ci-plan)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "terraform_state_bucket" {
  description = "The backend's S3 bucket (the deploy workflow sets TF_VAR_terraform_state_bucket): ci-plan reads and ci-deploy writes exactly this deployment's state object there. Null: the CI roles get no state access."
  type        = string
  default     = null
}

variable "terraform_state_key" {
  description = "The backend's state key (the deploy workflow uses rotor/development.tfstate)."
  type        = string
  default     = null
}
