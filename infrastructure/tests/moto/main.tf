# Test root: the rotor module in two regions against the moto emulator (tests/terraform.rs
# applies it in a temporary copy, then destroys it). Not a deployment: credentials are dummies,
# every service endpoint is moto's, and deletion windows are the shortest.

terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }
}

variable "moto_endpoint" {
  description = "moto's URL, e.g. http://127.0.0.1:5000 (ROTOR_MOTO_ENDPOINT)."
  type        = string

  validation {
    condition     = can(regex("^https?://", var.moto_endpoint))
    error_message = "moto_endpoint must be an http(s) URL."
  }
}

variable "environment" {
  description = "Environment name of this test deployment (the test makes it unique per run)."
  type        = string
  default     = "moto"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.environment))
    error_message = "environment must be 2 to 20 characters: lower-case letters, digits and '-'."
  }
}

variable "access_key" {
  description = "Access key id the provider signs with: moto accepts any, and the permission check (scripts/permissions.py) attributes each call to the principal its key names (rotor-ci-plan, rotor-ci-deploy; testing = the administrator)."
  type        = string
  default     = "testing"
}

variable "log_level" {
  description = "The functions' RUST_LOG: tests/terraform.rs changes it in an apply as ci-deploy (a routine deploy)."
  type        = string
  default     = "info"
}

variable "lambda_zip_dir" {
  description = "Folder with the six <function>.zip (placeholders: moto never runs them)."
  type        = string
}

variable "lambda_architecture" {
  description = "arm64, or x86_64 when the zips in lambda_zip_dir were built for it."
  type        = string
  default     = "arm64"
}

locals {
  # Every service the module calls, all to moto.
  endpoints = {
    cloudtrail     = var.moto_endpoint
    cloudwatch     = var.moto_endpoint
    cloudwatchlogs = var.moto_endpoint
    iam            = var.moto_endpoint
    kms            = var.moto_endpoint
    lambda         = var.moto_endpoint
    s3             = var.moto_endpoint
    scheduler      = var.moto_endpoint
    secretsmanager = var.moto_endpoint
    sfn            = var.moto_endpoint
    sns            = var.moto_endpoint
    sts            = var.moto_endpoint
  }
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = var.access_key
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  # A call moto does not implement fails at once instead of retrying for minutes.
  max_retries = 1
  # moto serves S3 on its one host: buckets in the path, not in the host name.
  s3_use_path_style = true

  endpoints {
    cloudtrail     = local.endpoints.cloudtrail
    cloudwatch     = local.endpoints.cloudwatch
    cloudwatchlogs = local.endpoints.cloudwatchlogs
    iam            = local.endpoints.iam
    kms            = local.endpoints.kms
    lambda         = local.endpoints.lambda
    s3             = local.endpoints.s3
    scheduler      = local.endpoints.scheduler
    secretsmanager = local.endpoints.secretsmanager
    sfn            = local.endpoints.sfn
    sns            = local.endpoints.sns
    sts            = local.endpoints.sts
  }
}

provider "aws" {
  alias                       = "us_west_2"
  region                      = "us-west-2"
  access_key                  = var.access_key
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  max_retries                 = 1

  endpoints {
    iam = local.endpoints.iam
    kms = local.endpoints.kms
    sts = local.endpoints.sts
  }
}

module "kms_replica_us_west_2" {
  source = "../../modules/rotor/modules/kms-replica"
  providers = {
    aws = aws.us_west_2
  }

  primary_key_arn      = module.rotor.kms_key_arn
  description          = module.rotor.kms_key_description
  deletion_window_days = 7
}

module "rotor" {
  source = "../../modules/rotor"

  environment          = var.environment
  regions              = ["us-east-1", "us-west-2"]
  replica_kms_key_arns = { "us-west-2" = module.kms_replica_us_west_2.arn }
  lambda_zip_dir       = var.lambda_zip_dir
  lambda_architecture  = var.lambda_architecture
  log_level            = var.log_level
  github_repository    = "example-org/rotor"
  github_environment   = var.environment
  # The CI roles' state access is planned and deployed (moto's S3 is not used for state here).
  terraform_state_bucket = "rotor-${var.environment}-terraform-state"
  terraform_state_key    = "rotor/${var.environment}.tfstate"

  kms_deletion_window_days    = 7
  secret_recovery_window_days = 0
  # The audit trail, applied by the administrator and refreshed by ci-plan and ci-deploy.
  create_cloudtrail = true

  secrets = {
    openai = {
      name           = "rotor-${var.environment}/openai_api_key"
      kind           = "vendor-api-key"
      probe          = "openai"
      app_health_url = "https://app.example.com/health"
      schedule       = "rate(7 days)"
      max_age_days   = 90
      # Two consumer services (moto's account): the rotor:consumers tag and the state
      # machine's ECS grant are deployed, and the permission check evaluates the definition's
      # ECS tasks on them (no ECS service exists on moto; nothing here calls ECS).
      consumers = [
        "arn:aws:ecs:us-east-1:123456789012:service/rotor-${var.environment}/api",
        "arn:aws:ecs:us-east-1:123456789012:service/rotor-${var.environment}/worker",
      ]
      consumer_timeout_seconds = 600
      consumer_poll_seconds    = 10
    }
    session = {
      name                   = "rotor-${var.environment}/session_signing_key"
      kind                   = "generated"
      length                 = 64
      charset                = "url-safe"
      wait_consumers_seconds = 120
      schedule               = "cron(0 3 1 * ? *)"
    }
    deployer = {
      name             = "rotor-${var.environment}/deployer_access_key"
      kind             = "iam-access-key"
      iam_user         = "rotor-${var.environment}-deployer"
      iam_probe_action = "iam:GetUser"
      grace_seconds    = 86400
      schedule         = "rate(30 days)"
    }
  }

  # An application's read policy (the administrator's CreatePolicy; refreshed by ci-plan).
  applications = {
    backend = { secrets = ["openai", "session"] }
  }
}

output "state_machine_arn" {
  description = "ARN of the rotation state machine on moto."
  value       = module.rotor.state_machine_arn
}

output "function_arns" {
  description = "ARNs of the six functions on moto."
  value       = module.rotor.function_arns
}

output "replica_key_arn" {
  description = "ARN of the KMS replica key in us-west-2."
  value       = module.kms_replica_us_west_2.arn
}
