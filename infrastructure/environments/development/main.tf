# rotor, development: one region, the example secrets below. Deploy:
#   scripts/package                                   # target/lambda-zips/
#   terraform -chdir=infrastructure/environments/development init -backend-config=backend.hcl
#   terraform -chdir=infrastructure/environments/development apply
# backend.hcl (not committed) names the state bucket: bucket, key (rotor/development.tfstate, as
# .github/workflows/deploy.yml uses), region, use_lockfile = true. Pass the same bucket and key
# as -var terraform_state_bucket=... -var terraform_state_key=... so ci-plan/ci-deploy may use them.

terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }

  # Partial configuration: `terraform init -backend-config=backend.hcl`.
  backend "s3" {}
}

provider "aws" {
  region = var.region
}

module "rotor" {
  source = "../../modules/rotor"

  environment            = "development"
  regions                = [var.region]
  lambda_zip_dir         = coalesce(var.lambda_zip_dir, "${path.root}/../../../target/lambda-zips")
  lambda_architecture    = var.lambda_architecture
  github_repository      = var.github_repository
  github_environment     = "development"
  terraform_state_bucket = var.terraform_state_bucket
  terraform_state_key    = var.terraform_state_key
  log_level              = "rotor=debug,info"

  # Development: short waits, deletions that can be undone for a week.
  kms_deletion_window_days    = 7
  secret_recovery_window_days = 7

  secrets = {
    openai = {
      name                     = "development/openai_api_key"
      kind                     = "vendor-api-key"
      probe                    = "openai"
      wait_propagation_seconds = 5
      wait_consumers_seconds   = 30
      schedule                 = "rate(1 day)"
      max_age_days             = 30
    }
    session = {
      name                   = "development/session_signing_key"
      kind                   = "generated"
      length                 = 64
      charset                = "url-safe"
      wait_consumers_seconds = 30
      schedule               = "rate(7 days)"
    }
  }
}
