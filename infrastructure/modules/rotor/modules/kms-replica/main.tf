# A replica of rotor's multi-Region KMS key in the region of this module's `aws` provider.
# Instantiate it once per extra region of the rotor module's `regions` (Terraform's AWS
# provider 5.x works in one region per provider configuration) and pass the `arn` outputs to
# the rotor module as `replica_kms_key_arns`.

terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }
}

variable "primary_key_arn" {
  description = "ARN of the rotor module's multi-Region primary key (output `kms_key_arn`)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/mrk-[0-9a-f-]{32,36}$", var.primary_key_arn))
    error_message = "primary_key_arn must be a multi-Region key ARN (key/mrk-...)."
  }
}

variable "description" {
  description = "Description of the replica key; null: \"rotor: replica of <primary ARN>\". Pass the rotor module's kms_key_description to keep primary and replicas alike."
  type        = string
  default     = null

  validation {
    condition     = var.description == null || length(coalesce(var.description, "-")) <= 8192
    error_message = "description must be at most 8192 characters."
  }
}

variable "deletion_window_days" {
  description = "Waiting period before the replica key is deleted after a destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_days >= 7 && var.deletion_window_days <= 30
    error_message = "deletion_window_days must be from 7 to 30."
  }
}

variable "tags" {
  description = "Tags of the replica key."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tags) : !startswith(k, "aws:")])
    error_message = "tags may not use the aws: prefix."
  }
}

resource "aws_kms_replica_key" "this" {
  description             = coalesce(var.description, "rotor: replica of ${var.primary_key_arn}")
  primary_key_arn         = var.primary_key_arn
  deletion_window_in_days = var.deletion_window_days
  # No `policy`: KMS gives the replica its default key policy, the account-root (IAM delegation)
  # statement alone. In this region the key only encrypts the secrets' replicas, through Secrets
  # Manager, for principals whose IAM policies allow it (the rotor module's roles).
  tags = var.tags
}

output "arn" {
  description = "ARN of the replica key (pass it to the rotor module's replica_kms_key_arns under its region)."
  value       = aws_kms_replica_key.this.arn
}

output "key_id" {
  description = "Key id of the replica (the same mrk-... id as the primary)."
  value       = aws_kms_replica_key.this.key_id
}
